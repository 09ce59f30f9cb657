package keyboardlm.demo;

import android.inputmethodservice.InputMethodService;
import android.view.Gravity;
import android.view.View;
import android.view.inputmethod.EditorInfo;
import android.view.inputmethod.InputConnection;
import android.widget.Button;
import android.widget.LinearLayout;
import java.util.Locale;
import keyboardlm.core.KeyboardSession;
import keyboardlm.core.TextEdit;

/**
 * The system keyboard: the suggestion strip above a plain QWERTY layout. The engine follows
 * the text before the cursor: this keyboard's own keys change it incrementally (type,
 * backspace, tap). On every selection update the editor's text before the cursor is
 * compared with the engine's (editor calls run in order, so it already holds all our
 * edits, however fast the typing): text added after the engine's is stepped on; anything
 * else (a touch moved the cursor, another app edited) resets the engine, as a cursor jump should.
 */
public final class KeyboardService extends InputMethodService {
    private static final int CONTEXT = 2000;  // characters before the cursor the engine reads
    private static final String[] ROWS = {"qwertyuiop", "asdfghjkl'", "zxcvbnm"};

    private KeyboardSession session;
    private StripView strip;
    private boolean shift = true;

    @Override
    public void onCreate() {
        super.onCreate();
        session = Sessions.open(this);
    }

    @Override
    public void onDestroy() {
        session.close();  // the LiteRT interpreter
        super.onDestroy();
    }

    @Override
    public View onCreateInputView() {
        LinearLayout root = new LinearLayout(this);
        root.setOrientation(LinearLayout.VERTICAL);
        strip = new StripView(this);
        strip.setOnTap(this::tap);
        root.addView(strip);
        for (String row : ROWS) {
            LinearLayout line = row(root);
            if (row.startsWith("z")) key(line, "\u21e7", 1.5f, v -> { shift = !shift; });
            for (char c : row.toCharArray()) key(line, String.valueOf(c), 1, v -> type(shift ? String.valueOf(c).toUpperCase(Locale.ROOT) : String.valueOf(c)));
            if (row.startsWith("z")) key(line, "\u232b", 1.5f, v -> backspace());
        }
        LinearLayout last = row(root);
        for (String s : new String[] {",", "?", "!"}) key(last, s, 1, v -> type(s));
        key(last, "space", 4, v -> type(" "));
        key(last, ".", 1, v -> type("."));
        key(last, "\u23ce", 1.5f, v -> enter());
        return root;
    }

    private LinearLayout row(LinearLayout root) {
        LinearLayout line = new LinearLayout(this);
        line.setGravity(Gravity.CENTER);
        root.addView(line);
        return line;
    }

    private void key(LinearLayout line, String label, float weight, View.OnClickListener action) {
        Button button = new Button(this);
        button.setText(label);
        button.setAllCaps(false);
        button.setOnClickListener(action);
        line.addView(button, new LinearLayout.LayoutParams(0, LinearLayout.LayoutParams.WRAP_CONTENT, weight));
    }

    @Override
    public void onStartInputView(EditorInfo info, boolean restarting) {
        super.onStartInputView(info, restarting);
        show(session.reset(beforeCursor()));
    }

    @Override
    public void onUpdateSelection(int oldSelStart, int oldSelEnd, int newSelStart, int newSelEnd,
                                  int candidatesStart, int candidatesEnd) {
        super.onUpdateSelection(oldSelStart, oldSelEnd, newSelStart, newSelEnd, candidatesStart, candidatesEnd);
        sync(newSelStart);
    }

    /** The editor's text before the cursor (its last CONTEXT characters at most). */
    private String beforeCursor() {
        InputConnection ic = getCurrentInputConnection();
        CharSequence before = ic == null ? null : ic.getTextBeforeCursor(CONTEXT, 0);
        return before == null ? "" : before.toString();
    }

    /**
     * Brings the engine to the editor's text before the cursor if it differs (see the class
     * comment); {@code cursor}: where the editor reported it, or -1.
     */
    private void sync(int cursor) {
        String before = beforeCursor(), text = text();
        boolean cut = before.length() >= CONTEXT || before.length() < cursor;  // only the end of the text before the cursor
        if (before.equals(text) || (cut && text.endsWith(before))) return;  // in step
        show(before.startsWith(text) ? session.setText(before) : session.reset(before));
    }

    private void type(String characters) {
        InputConnection ic = getCurrentInputConnection();
        if (ic == null) return;
        ic.commitText(characters, 1);
        shift = false;
        show(session.setText(text() + characters));
    }

    private void backspace() {
        InputConnection ic = getCurrentInputConnection();
        if (ic == null) return;
        CharSequence selected = ic.getSelectedText(0);
        if (selected != null && selected.length() > 0) {
            ic.commitText("", 1);  // deletes the selection; the selection update resyncs the engine
            return;
        }
        String text = text();
        ic.deleteSurroundingTextInCodePoints(1, 0);
        show(session.setText(text.isEmpty() ? text : text.substring(0, text.offsetByCodePoints(text.length(), -1))));
    }

    private void enter() {
        InputConnection ic = getCurrentInputConnection();
        EditorInfo info = getCurrentInputEditorInfo();
        int action = info == null ? EditorInfo.IME_ACTION_NONE : info.imeOptions & EditorInfo.IME_MASK_ACTION;
        if (ic != null && action != EditorInfo.IME_ACTION_NONE && action != EditorInfo.IME_ACTION_UNSPECIFIED
                && (info.imeOptions & EditorInfo.IME_FLAG_NO_ENTER_ACTION) == 0) {
            ic.performEditorAction(action);
        } else {
            type("\n");
        }
    }

    private void tap(int slot) {
        InputConnection ic = getCurrentInputConnection();
        sync(-1);  // the edit is computed from the engine's text: it must be the editor's
        String before = text();
        String after = session.tap(slot);
        if (ic == null || after == null) return;
        TextEdit edit = TextEdit.between(before, after);
        ic.beginBatchEdit();
        ic.deleteSurroundingText(edit.delete, 0);
        ic.commitText(edit.insert, 1);
        ic.endBatchEdit();
        show(session.strip());
    }

    /** The engine's view of the text before the cursor ("" without an engine). */
    private String text() {
        return session.ready() ? session.engine().text() : "";
    }

    private void show(java.util.List<String> words) {
        if (strip != null) strip.show(words, session.message());
    }
}

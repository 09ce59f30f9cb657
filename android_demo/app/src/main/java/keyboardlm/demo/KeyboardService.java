package keyboardlm.demo;

import android.content.Context;
import android.inputmethodservice.InputMethodService;
import android.util.Log;
import android.view.Gravity;
import android.view.KeyEvent;
import android.view.View;
import android.view.inputmethod.EditorInfo;
import android.view.inputmethod.InputConnection;
import android.widget.Button;
import android.widget.LinearLayout;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import keyboardlm.core.KeyboardController;

/**
 * The system keyboard: the suggestion strip above a plain QWERTY layout. A thin adapter:
 * each callback goes to the KeyboardController (core/, where every decision lives and is
 * tested), whose answers come back through the Editor below, applied to the current
 * InputConnection as they are. The model runs on the controller's background thread. The
 * words the user teaches it are loaded at onCreate and saved (on that thread) when input ends;
 * so is the text the user commits, which the nightly job (AdaptJobService, scheduled here) trains
 * an adapter on: a new one is loaded at the next field (docs/engine.md §18.5).
 */
public final class KeyboardService extends InputMethodService implements KeyboardController.Editor {
    private static final String[] ROWS = {"qwertyuiop", "asdfghjkl'", "zxcvbnm"};

    private ExecutorService worker;
    private File wordsFile;
    private KeyboardController controller;
    private long adapters;  // adapters the nightly job had written when the model was last (re)opened
    private StripView strip;
    private final List<Button> letters = new ArrayList<>();

    @Override
    public void onCreate() {
        super.onCreate();
        worker = Sessions.worker();
        wordsFile = Sessions.wordsFile(this);
        // loads no bundle yet (the first field does); the user's words are read now, a small file
        adapters = Sessions.adapters();
        controller = Sessions.controller(this, this, worker, Sessions.loadWords(this, wordsFile), Sessions.committed(this));
        AdaptJobService.schedule(this);
    }

    @Override
    public void onDestroy() {
        Sessions.setKeyboardOpen(false);
        saveWords();
        saveCommitted();
        controller.close();  // releases the LiteRT interpreter on the worker
        worker.shutdown();
        super.onDestroy();
    }

    @Override
    public View onCreateInputView() {
        LinearLayout root = new LinearLayout(this);
        root.setOrientation(LinearLayout.VERTICAL);
        strip = new StripView(this);
        strip.setOnTap(slot -> controller.onTap(slot));
        root.addView(strip);
        letters.clear();
        for (String row : ROWS) {
            LinearLayout line = row(root);
            if (row.startsWith("z")) key(line, "\u21e7", 1.5f, v -> controller.onShiftKey());
            for (char c : row.toCharArray()) letters.add(key(line, String.valueOf(c), 1, v -> controller.onKey(String.valueOf(c))));
            if (row.startsWith("z")) key(line, "\u232b", 1.5f, v -> controller.onBackspace());
        }
        LinearLayout last = row(root);
        for (String s : new String[] {",", "?", "!"}) key(last, s, 1, v -> controller.onKey(s));
        key(last, "space", 4, v -> controller.onKey(" "));
        key(last, ".", 1, v -> controller.onKey("."));
        key(last, "\u23ce", 1.5f, v -> controller.onEnter());
        setShift(controller.shift());
        return root;
    }

    private LinearLayout row(LinearLayout root) {
        LinearLayout line = new LinearLayout(this);
        line.setGravity(Gravity.CENTER);
        root.addView(line);
        return line;
    }

    private Button key(LinearLayout line, String label, float weight, View.OnClickListener action) {
        Button button = new Button(this);
        button.setText(label);
        button.setAllCaps(false);
        button.setOnClickListener(action);
        line.addView(button, new LinearLayout.LayoutParams(0, LinearLayout.LayoutParams.WRAP_CONTENT, weight));
        return button;
    }

    // -- callbacks: forwarded ---------------------------------------------------------------

    @Override
    public void onStartInputView(EditorInfo info, boolean restarting) {
        super.onStartInputView(info, restarting);
        Sessions.setKeyboardOpen(true);
        adapters = Sessions.reloadIfAdapted(controller, adapters);
        controller.onStartInput(info.inputType, info.imeOptions);  // also reloads a bundle pushed since
    }

    @Override
    public void onFinishInputView(boolean finishingInput) {
        controller.onFinishInput();
        Sessions.setKeyboardOpen(false);
        super.onFinishInputView(finishingInput);
    }

    @Override
    public void onFinishInput() {
        controller.onFinishInput();
        saveWords();
        saveCommitted();
        super.onFinishInput();
    }

    /** Saves the committed text on the worker (nothing is written when it is as saved). */
    private void saveCommitted() {
        Context app = getApplicationContext();
        worker.execute(() -> Sessions.saveCommitted(app));
    }

    /** Saves the words the user taught it, on the worker (nothing is written when they are as saved). */
    private void saveWords() {
        controller.saveUserWords(wordsFile, message -> Log.w(Sessions.TAG, message));
    }

    @Override
    public void onUpdateSelection(int oldSelStart, int oldSelEnd, int newSelStart, int newSelEnd,
                                  int candidatesStart, int candidatesEnd) {
        super.onUpdateSelection(oldSelStart, oldSelEnd, newSelStart, newSelEnd, candidatesStart, candidatesEnd);
        controller.onUpdateSelection(newSelStart, newSelEnd, candidatesStart, candidatesEnd);
    }

    // -- the controller's answers, applied ---------------------------------------------------

    @Override
    public String textBeforeCursor(int maxChars) {
        InputConnection ic = getCurrentInputConnection();
        CharSequence before = ic == null ? null : ic.getTextBeforeCursor(maxChars, 0);
        return before == null ? null : before.toString();
    }

    @Override
    public void commitText(String text) {
        InputConnection ic = getCurrentInputConnection();
        if (ic != null) ic.commitText(text, 1);
    }

    @Override
    public void deleteBefore(int chars) {
        InputConnection ic = getCurrentInputConnection();
        if (ic != null) ic.deleteSurroundingText(chars, 0);
    }

    @Override
    public void replaceBefore(int delete, String insert) {
        InputConnection ic = getCurrentInputConnection();
        if (ic == null) return;
        ic.beginBatchEdit();
        ic.deleteSurroundingText(delete, 0);
        ic.commitText(insert, 1);
        ic.endBatchEdit();
    }

    @Override
    public void sendDeleteKey() {
        sendDownUpKeyEvents(KeyEvent.KEYCODE_DEL);
    }

    @Override
    public void finishComposing() {
        InputConnection ic = getCurrentInputConnection();
        if (ic != null) ic.finishComposingText();
    }

    @Override
    public void performEditorAction(int action) {
        InputConnection ic = getCurrentInputConnection();
        if (ic != null) ic.performEditorAction(action);
    }

    @Override
    public void showStrip(List<String> words, String message) {
        if (strip != null) strip.show(words, message);
    }

    @Override
    public void setShift(boolean on) {
        for (Button letter : letters) {
            String label = letter.getText().toString();
            letter.setText(on ? label.toUpperCase(Locale.ROOT) : label.toLowerCase(Locale.ROOT));
        }
    }
}

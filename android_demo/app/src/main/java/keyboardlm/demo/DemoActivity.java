package keyboardlm.demo;

import android.app.Activity;
import android.content.Context;
import android.os.Build;
import android.os.Bundle;
import android.text.Editable;
import android.text.TextWatcher;
import android.view.KeyEvent;
import android.view.View;
import android.view.WindowInsets;
import android.view.inputmethod.BaseInputConnection;
import android.view.inputmethod.InputMethodManager;
import java.util.List;
import java.util.concurrent.ExecutorService;
import keyboardlm.core.InputTypes;
import keyboardlm.core.KeyboardController;

/**
 * A text field plus the strip: try a bundle without switching keyboards. A thin adapter, like
 * KeyboardService: the field's edits and cursor moves go to the KeyboardController (core/),
 * its answers are applied to the field. The model runs on the controller's background thread.
 */
public final class DemoActivity extends Activity implements KeyboardController.Editor {
    private ExecutorService worker;
    private KeyboardController controller;
    private long adapters;  // adapters the nightly job had written when the model was last (re)opened
    private TextField text;
    private StripView strip;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_demo);
        View root = findViewById(R.id.root);
        padForInsets(root);
        text = findViewById(R.id.text);
        strip = findViewById(R.id.strip);
        worker = Sessions.worker();
        adapters = Sessions.adapters();
        controller = Sessions.controller(this, this, worker);
        strip.setOnTap(slot -> controller.onTap(slot));
        text.setOnSelectionChanged(this::report);
        text.addTextChangedListener(new TextWatcher() {
            @Override
            public void beforeTextChanged(CharSequence s, int start, int count, int after) {}

            @Override
            public void onTextChanged(CharSequence s, int start, int before, int count) {}

            @Override
            public void afterTextChanged(Editable s) {
                report();
            }
        });
    }

    /**
     * targetSdk 35: Android 15 draws the activity edge to edge; the system bars and the
     * keyboard are padded out (the layout's 16dp plus the insets).
     */
    private static void padForInsets(View root) {
        final int left = root.getPaddingLeft(), top = root.getPaddingTop();
        final int right = root.getPaddingRight(), bottom = root.getPaddingBottom();
        root.setOnApplyWindowInsetsListener((v, insets) -> {
            int l, t, r, b;
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                android.graphics.Insets bars = insets.getInsets(WindowInsets.Type.systemBars()
                        | WindowInsets.Type.displayCutout() | WindowInsets.Type.ime());
                l = bars.left; t = bars.top; r = bars.right; b = bars.bottom;
            } else {
                l = insets.getSystemWindowInsetLeft(); t = insets.getSystemWindowInsetTop();
                r = insets.getSystemWindowInsetRight(); b = insets.getSystemWindowInsetBottom();
            }
            v.setPadding(left + l, top + t, right + r, bottom + b);
            return insets;
        });
    }

    @Override
    protected void onResume() {
        super.onResume();
        // The field is textNoSuggestions for the system keyboard (the strip below is this
        // demo's suggestion UI), so the controller sees a plain text field.
        adapters = Sessions.reloadIfAdapted(controller, adapters);  // a new adapter from the nightly job
        controller.onStartInput(InputTypes.TYPE_CLASS_TEXT, 0);  // reloads a bundle pushed since
    }

    @Override
    protected void onPause() {
        controller.onFinishInput();
        super.onPause();
    }

    @Override
    protected void onDestroy() {
        controller.close();  // releases the LiteRT interpreter on the worker
        worker.shutdown();
        super.onDestroy();
    }

    private void report() {
        if (controller == null) return;  // the field reports while the layout is inflated
        Editable s = text.getText();
        controller.onUpdateSelection(text.getSelectionStart(), text.getSelectionEnd(),
                BaseInputConnection.getComposingSpanStart(s), BaseInputConnection.getComposingSpanEnd(s));
    }

    // -- the controller's answers, applied to the field --------------------------------------

    private int cursor() {
        return Math.max(Math.min(text.getSelectionStart(), text.getSelectionEnd()), 0);
    }

    @Override
    public String textBeforeCursor(int maxChars) {
        int cursor = cursor();
        return text.getText().subSequence(Math.max(0, cursor - maxChars), cursor).toString();
    }

    @Override
    public void commitText(String insert) {
        int start = cursor(), end = Math.max(text.getSelectionStart(), text.getSelectionEnd());
        text.getText().replace(start, Math.max(start, end), insert);
    }

    @Override
    public void deleteBefore(int chars) {
        int cursor = cursor();
        text.getText().delete(Math.max(0, cursor - chars), cursor);
    }

    @Override
    public void replaceBefore(int delete, String insert) {
        int cursor = cursor();
        text.getText().replace(Math.max(0, cursor - delete), cursor, insert);
        restartInput();  // the system keyboard's idea of the text is stale now
    }

    @Override
    public void sendDeleteKey() {
        text.dispatchKeyEvent(new KeyEvent(KeyEvent.ACTION_DOWN, KeyEvent.KEYCODE_DEL));
        text.dispatchKeyEvent(new KeyEvent(KeyEvent.ACTION_UP, KeyEvent.KEYCODE_DEL));
    }

    @Override
    public void finishComposing() {
        BaseInputConnection.removeComposingSpans(text.getText());  // the system keyboard's composing word
    }

    @Override
    public void performEditorAction(int action) {
        text.onEditorAction(action);
    }

    @Override
    public void showStrip(List<String> words, String message) {
        strip.show(words, message);
    }

    @Override
    public void setShift(boolean on) {
        // no keys of its own: the system keyboard shifts itself
    }

    private void restartInput() {
        InputMethodManager imm = (InputMethodManager) getSystemService(Context.INPUT_METHOD_SERVICE);
        if (imm != null) imm.restartInput(text);
    }
}

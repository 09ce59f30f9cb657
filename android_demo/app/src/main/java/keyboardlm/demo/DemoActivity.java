package keyboardlm.demo;

import android.app.Activity;
import android.os.Bundle;
import android.text.Editable;
import android.text.TextWatcher;
import android.widget.TextView;
import keyboardlm.core.KeyboardSession;
import keyboardlm.core.TextEdit;

/**
 * A text field plus the strip: try a bundle without switching keyboards. The engine follows
 * the text before the cursor on every edit and every cursor move.
 */
public final class DemoActivity extends Activity {
    private KeyboardSession session;
    private TextField text;
    private StripView strip;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_demo);
        text = findViewById(R.id.text);
        strip = findViewById(R.id.strip);
        session = Sessions.open(this);
        ((TextView) findViewById(R.id.status)).setText(session.ready() ? "Bundle loaded and verified." : session.message());
        strip.setOnTap(this::tap);
        text.setOnSelectionChanged(this::refresh);
        text.addTextChangedListener(new TextWatcher() {
            @Override
            public void beforeTextChanged(CharSequence s, int start, int count, int after) {}

            @Override
            public void onTextChanged(CharSequence s, int start, int before, int count) {}

            @Override
            public void afterTextChanged(Editable s) {
                refresh();
            }
        });
        refresh();
    }

    /** The text before the cursor is what the engine reads. */
    private String beforeCursor() {
        int cursor = Math.max(text.getSelectionStart(), 0);
        return text.getText().subSequence(0, cursor).toString();
    }

    private void refresh() {
        strip.show(session.setText(beforeCursor()), session.message());
    }

    @Override
    protected void onDestroy() {
        session.close();  // the LiteRT interpreter
        super.onDestroy();
    }

    private void tap(int slot) {
        String before = beforeCursor();
        session.setText(before);  // the edit is computed from the engine's text: it must be the field's
        String after = session.tap(slot);
        if (after == null) {
            refresh();
            return;
        }
        TextEdit edit = TextEdit.between(before, after);
        int cursor = before.length();
        text.getText().replace(cursor - edit.delete, cursor, edit.insert);  // fires refresh()
    }
}

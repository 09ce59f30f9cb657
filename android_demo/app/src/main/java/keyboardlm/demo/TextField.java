package keyboardlm.demo;

import android.content.Context;
import android.util.AttributeSet;
import android.widget.EditText;

/** An EditText that reports cursor moves (TextView has a listener for edits, none for the selection). */
public final class TextField extends EditText {
    private Runnable onSelectionChanged;

    public TextField(Context context, AttributeSet attrs) {
        super(context, attrs);
    }

    public void setOnSelectionChanged(Runnable listener) {
        onSelectionChanged = listener;
    }

    @Override
    protected void onSelectionChanged(int selStart, int selEnd) {
        super.onSelectionChanged(selStart, selEnd);
        if (onSelectionChanged != null) onSelectionChanged.run();  // null while the constructor sets the text
    }
}

package keyboardlm.demo;

import android.content.Context;
import android.util.AttributeSet;
import android.view.Gravity;
import android.widget.LinearLayout;
import android.widget.TextView;
import java.util.List;

/** The 3-slot suggestion strip; or, when the session has no engine, its one-line message. */
public final class StripView extends LinearLayout {
    /** Called with the slot the user tapped (0-2). */
    public interface OnTap {
        void tapped(int slot);
    }

    private final TextView[] slots = new TextView[3];
    private final TextView message;
    private OnTap onTap;

    public StripView(Context context) {
        this(context, null);
    }

    public StripView(Context context, AttributeSet attrs) {
        super(context, attrs);
        setOrientation(HORIZONTAL);
        int padding = (int) (12 * getResources().getDisplayMetrics().density);
        for (int i = 0; i < slots.length; i++) {
            final int slot = i;
            TextView view = new TextView(context);
            view.setGravity(Gravity.CENTER);
            view.setTextSize(18);
            view.setPadding(0, padding, 0, padding);
            view.setSingleLine();
            view.setOnClickListener(v -> {
                if (onTap != null && v.getTag() != null) onTap.tapped(slot);
            });
            addView(view, new LayoutParams(0, LayoutParams.WRAP_CONTENT, 1));
            slots[i] = view;
        }
        message = new TextView(context);
        message.setPadding(padding, padding, padding, padding);
        message.setVisibility(GONE);
        addView(message, new LayoutParams(LayoutParams.MATCH_PARENT, LayoutParams.WRAP_CONTENT));
    }

    public void setOnTap(OnTap onTap) {
        this.onTap = onTap;
    }

    /** Shows {@code words}, or {@code problem} instead if it is not null. */
    public void show(List<String> words, String problem) {
        message.setVisibility(problem == null ? GONE : VISIBLE);
        message.setText(problem);
        for (int i = 0; i < slots.length; i++) {
            String word = problem == null && i < words.size() ? words.get(i) : null;
            slots[i].setVisibility(problem == null ? VISIBLE : GONE);
            slots[i].setText(word == null ? "" : word);
            slots[i].setTag(word);
        }
    }
}

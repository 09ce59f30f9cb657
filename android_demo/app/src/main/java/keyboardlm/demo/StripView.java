package keyboardlm.demo;

import android.content.Context;
import android.util.AttributeSet;
import android.view.Gravity;
import android.widget.LinearLayout;
import android.widget.TextView;
import java.util.ArrayList;
import java.util.List;

/**
 * The suggestion strip: 3 slots, or as many as the bundle's strip holds (its manifest's
 * engine.strip_size, docs/engine.md §3: a slot is added the first time a strip has more
 * words); or, when the session has no engine, its one-line message.
 */
public final class StripView extends LinearLayout {
    /** Called with the slot the user tapped (0 for the first). */
    public interface OnTap {
        void tapped(int slot);
    }

    private static final int SLOTS = 3;
    private final List<TextView> slots = new ArrayList<>();
    private final TextView message;
    private final int padding;
    private OnTap onTap;

    public StripView(Context context) {
        this(context, null);
    }

    public StripView(Context context, AttributeSet attrs) {
        super(context, attrs);
        setOrientation(HORIZONTAL);
        padding = (int) (12 * getResources().getDisplayMetrics().density);
        message = new TextView(context);
        message.setPadding(padding, padding, padding, padding);
        message.setVisibility(GONE);
        addView(message, new LayoutParams(LayoutParams.MATCH_PARENT, LayoutParams.WRAP_CONTENT));
        while (slots.size() < SLOTS) addSlot();
    }

    /** One more slot, after the others (before the message view). */
    private void addSlot() {
        final int slot = slots.size();
        TextView view = new TextView(getContext());
        view.setGravity(Gravity.CENTER);
        view.setTextSize(18);
        view.setPadding(0, padding, 0, padding);
        view.setSingleLine();
        view.setOnClickListener(v -> {
            if (onTap != null && v.getTag() != null) onTap.tapped(slot);
        });
        addView(view, slot, new LayoutParams(0, LayoutParams.WRAP_CONTENT, 1));
        slots.add(view);
    }

    public void setOnTap(OnTap onTap) {
        this.onTap = onTap;
    }

    /** Shows {@code words}, or {@code problem} instead if it is not null. */
    public void show(List<String> words, String problem) {
        while (problem == null && slots.size() < words.size()) addSlot();
        message.setVisibility(problem == null ? GONE : VISIBLE);
        message.setText(problem);
        for (int i = 0; i < slots.size(); i++) {
            String word = problem == null && i < words.size() ? words.get(i) : null;
            slots.get(i).setVisibility(problem == null ? VISIBLE : GONE);
            slots.get(i).setText(word == null ? "" : word);
            slots.get(i).setTag(word);
        }
    }
}

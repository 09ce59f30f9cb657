package keyboardlm.core;

/**
 * What an editor's EditorInfo.inputType and imeOptions ask of the keyboard. The constants are
 * Android's, copied (core has no Android imports) from the documentation of
 * android.text.InputType and android.view.inputmethod.EditorInfo
 * (https://developer.android.com/reference/android/text/InputType,
 * https://developer.android.com/reference/android/view/inputmethod/EditorInfo); they are part
 * of the public API and never change value.
 */
public final class InputTypes {
    public static final int TYPE_NULL = 0x00000000;
    public static final int TYPE_MASK_CLASS = 0x0000000f;
    public static final int TYPE_MASK_VARIATION = 0x00000ff0;
    public static final int TYPE_CLASS_TEXT = 0x00000001;
    public static final int TYPE_CLASS_NUMBER = 0x00000002;
    public static final int TYPE_TEXT_VARIATION_PASSWORD = 0x00000080;
    public static final int TYPE_TEXT_VARIATION_VISIBLE_PASSWORD = 0x00000090;
    public static final int TYPE_TEXT_VARIATION_WEB_PASSWORD = 0x000000e0;
    public static final int TYPE_NUMBER_VARIATION_PASSWORD = 0x00000010;
    public static final int TYPE_TEXT_FLAG_NO_SUGGESTIONS = 0x00080000;
    public static final int IME_FLAG_NO_PERSONALIZED_LEARNING = 0x01000000;
    public static final int IME_FLAG_NO_ENTER_ACTION = 0x40000000;
    public static final int IME_MASK_ACTION = 0x000000ff;
    public static final int IME_ACTION_UNSPECIFIED = 0x00000000;
    public static final int IME_ACTION_NONE = 0x00000001;

    private InputTypes() {}

    /**
     * A private field: a password (text, visible, web or number), or a field that asks for no
     * suggestions or no personalized learning. The keyboard shows no strip, steps no model and
     * learns nothing there (keyboard_lm/phone/keyboard.py: reset(text, private=True); docs/engine.md §11).
     */
    public static boolean isPrivate(int inputType, int imeOptions) {
        int kind = inputType & TYPE_MASK_CLASS, variation = inputType & TYPE_MASK_VARIATION;
        if ((imeOptions & IME_FLAG_NO_PERSONALIZED_LEARNING) != 0) return true;
        if (kind == TYPE_CLASS_NUMBER) return variation == TYPE_NUMBER_VARIATION_PASSWORD;
        if (kind != TYPE_CLASS_TEXT) return false;
        return variation == TYPE_TEXT_VARIATION_PASSWORD || variation == TYPE_TEXT_VARIATION_VISIBLE_PASSWORD
                || variation == TYPE_TEXT_VARIATION_WEB_PASSWORD || (inputType & TYPE_TEXT_FLAG_NO_SUGGESTIONS) != 0;
    }

    /** Word suggestions make sense: a text field that is not private (not numbers, phones, dates, raw keys). */
    public static boolean suggests(int inputType, int imeOptions) {
        return (inputType & TYPE_MASK_CLASS) == TYPE_CLASS_TEXT && !isPrivate(inputType, imeOptions);
    }

    /** The editor action the enter key performs, or IME_ACTION_NONE when it types a new line. */
    public static int enterAction(int imeOptions) {
        int action = imeOptions & IME_MASK_ACTION;
        if (action == IME_ACTION_NONE || action == IME_ACTION_UNSPECIFIED || (imeOptions & IME_FLAG_NO_ENTER_ACTION) != 0) {
            return IME_ACTION_NONE;
        }
        return action;
    }
}

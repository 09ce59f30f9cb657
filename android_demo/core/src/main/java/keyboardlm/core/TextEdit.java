package keyboardlm.core;

/**
 * The edit that turns one text before the cursor into another: delete {@link #delete} UTF-16
 * chars before the cursor, then insert {@link #insert}. An IME applies it through its
 * InputConnection (deleteSurroundingText, commitText) after a tap. Never splits a surrogate pair.
 */
public final class TextEdit {
    public final int delete;
    public final String insert;

    private TextEdit(int delete, String insert) {
        this.delete = delete;
        this.insert = insert;
    }

    public static TextEdit between(String before, String after) {
        int common = 0;
        while (common < before.length() && common < after.length()) {
            int a = before.codePointAt(common), b = after.codePointAt(common);
            if (a != b) break;
            common += Character.charCount(a);
        }
        return new TextEdit(before.length() - common, after.substring(common));
    }
}

package keyboardlm.core;

import java.util.Arrays;

/**
 * Strings as Python sees them: sequences of code points. Java strings are UTF-16, so every
 * index, slice and comparison the spec defines on code points goes through here. A lone
 * surrogate counts as one code point, as in Python.
 */
public final class CodePoints {
    private CodePoints() {}

    /** The code points of {@code text}. */
    public static int[] of(String text) {
        int[] out = new int[text.length()];
        int n = 0;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            out[n++] = cp;
            i += Character.charCount(cp);
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }

    /** Number of code points (Python's len). */
    public static int length(String text) {
        return text.codePointCount(0, text.length());
    }

    /** Python's text[start:] with a code point index (clamped like Python). */
    public static String from(String text, int start) {
        int length = length(text);
        return start >= length ? "" : text.substring(text.offsetByCodePoints(0, Math.max(start, 0)));
    }

    /** The last code point of a non-empty string (a lone surrogate counts as one). */
    public static int last(String text) {
        return text.codePointBefore(text.length());
    }

    /** Python's text[:-1]: {@code text} without its last code point. */
    public static String dropLast(String text) {
        return text.isEmpty() ? text : text.substring(0, text.length() - Character.charCount(last(text)));
    }

    /** Python's string order (by code point), which differs from String.compareTo above U+FFFF. */
    public static int compare(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int x = a.codePointAt(i), y = b.codePointAt(j);
            if (x != y) return x < y ? -1 : 1;
            i += Character.charCount(x);
            j += Character.charCount(y);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}

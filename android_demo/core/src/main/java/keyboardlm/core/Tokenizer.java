package keyboardlm.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The tokenization spec, version 1 (docs/tokenization.md): the Java port of
 * data_pipeline/tokenization.py, held to it token for token by a fixture the Python twin
 * writes. Works on code points throughout, as Python does; indices it returns are UTF-16.
 *
 * Steps: (1) NFKC: the frozen table, then Python's own NFKC ({@link Nfkc});
 * (2) U+2019 to ' and U+2010 to -; (3) optional 1:1 lowercase table; (4) whitespace and
 * controls to U+0020; (5) tokens, leftmost-first: flag | number | word | symbol. Step 5 is
 * a scanner, not a regex: java.util.regex recurses per repetition and overflows its stack
 * on long words, and each alternative is deterministic once its first character is known.
 */
public final class Tokenizer {
    public static final int SPEC_VERSION = 1;
    /** Tokens that close a sentence (the engine feeds eos bos after them). */
    public static final Set<String> SENTENCE_ENDS = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(".", "!", "?")));

    private static final RangeTable WHITESPACE = new RangeTable(new int[][] {
        {0x0000, 0x0020}, {0x007F, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200A},
        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}});
    private static final RangeTable SYMBOL_CONTINUATION = new RangeTable(new int[][] {
        {0xFE0E, 0xFE0F}, {0x20E3, 0x20E3}, {0x1F3FB, 0x1F3FF}, {0xE0020, 0xE007F}});
    private static final int ZERO_WIDTH_JOINER = 0x200D;

    private static Tokenizer standard;

    private final UnicodeTables tables;
    private final Nfkc nfkc;

    Tokenizer(UnicodeTables tables, Nfkc nfkc) {
        this.tables = tables;
        this.nfkc = nfkc;
    }

    /** The tokenizer on core's shipped tables (loaded once, about 0.3 MB of JSON). */
    public static synchronized Tokenizer standard() {
        if (standard == null) standard = new Tokenizer(UnicodeTables.fromResources(), Nfkc.fromResources());
        return standard;
    }

    /** Steps 1-4: the text the token scanner runs on. */
    public String normalize(String text, boolean lowercase) {
        int[] cps = normalized(CodePoints.of(text), lowercase);
        return new String(cps, 0, cps.length);
    }

    private int[] normalized(int[] cps, boolean lowercase) {
        int[] mapped = new int[cps.length];
        int n = 0;
        for (int cp : cps) {
            int[] replacement = tables.nfkc.get(cp);
            if (replacement == null) {
                if (n == mapped.length) mapped = Arrays.copyOf(mapped, n * 2 + 4);
                mapped[n++] = cp;
            } else {
                if (n + replacement.length > mapped.length) mapped = Arrays.copyOf(mapped, (n + replacement.length) * 2);
                System.arraycopy(replacement, 0, mapped, n, replacement.length);
                n += replacement.length;
            }
        }
        int[] out = nfkc.apply(Arrays.copyOf(mapped, n));
        for (int i = 0; i < out.length; i++) {
            int cp = replace(out[i]);
            if (lowercase) cp = lower(cp);
            out[i] = WHITESPACE.contains(cp) ? ' ' : cp;
        }
        return out;
    }

    private static int replace(int cp) {
        return cp == 0x2019 ? '\'' : cp == 0x2010 ? '-' : cp;
    }

    private int lower(int cp) {
        Integer mapped = tables.lowercase.get(cp);
        return mapped == null ? cp : mapped;
    }

    /** Splits one string into tokens by the spec; never throws on any string. */
    public List<String> tokenize(String text, boolean lowercase) {
        int[] cps = normalized(CodePoints.of(text), lowercase);
        List<String> tokens = new ArrayList<>();
        int[] spans = scan(cps);
        for (int i = 0; i < spans.length; i += 2) tokens.add(new String(cps, spans[i], spans[i + 1] - spans[i]));
        return tokens;
    }

    /** Step 3 alone: the 1:1 lowercase map (for case-insensitive prefix matching). */
    public String lowercase(String text) {
        int[] cps = CodePoints.of(text);
        for (int i = 0; i < cps.length; i++) cps[i] = lower(cps[i]);
        return new String(cps, 0, cps.length);
    }

    /** True if {@code token} starts with a word character (a word or number, not punctuation). */
    public boolean isWord(String token) {
        return !token.isEmpty() && isWordChar(token.codePointAt(0));
    }

    /** True if {@code cp} is whitespace or a control character (step 4's set). */
    public static boolean isSpace(int cp) {
        return WHITESPACE.contains(cp);
    }

    /** True if {@code text} ends with whitespace or a control character (step 4's set). */
    public static boolean endsWithSpace(String text) {
        return !text.isEmpty() && WHITESPACE.contains(CodePoints.last(text));
    }

    /**
     * [start, end) of each token in {@code text} itself, as UTF-16 indices, by the token
     * scanner without NFKC or lowercasing (the 1:1 apostrophe/hyphen replacements apply).
     */
    public List<int[]> tokenSpans(String text) {
        int[] cps = CodePoints.of(text);
        int[] offsets = new int[cps.length + 1];  // code point index -> UTF-16 index
        for (int i = 0; i < cps.length; i++) {
            offsets[i + 1] = offsets[i] + Character.charCount(cps[i]);
            cps[i] = replace(cps[i]);
        }
        int[] spans = scan(cps);
        List<int[]> out = new ArrayList<>(spans.length / 2);
        for (int i = 0; i < spans.length; i += 2) out.add(new int[] {offsets[spans[i]], offsets[spans[i + 1]]});
        return out;
    }

    private boolean isWordChar(int cp) {
        return !WHITESPACE.contains(cp) && !tables.punctuation.contains(cp);
    }

    private static boolean isRegionalIndicator(int cp) {
        return cp >= 0x1F1E6 && cp <= 0x1F1FF;
    }

    private static boolean isDigit(int cp) {
        return cp >= '0' && cp <= '9';
    }

    /** Step 5 on code points: flat [start0, end0, start1, end1, ...] of the tokens. */
    private int[] scan(int[] cps) {
        int[] spans = new int[16];
        int count = 0;
        int n = cps.length;
        for (int i = 0; i < n; ) {
            int cp = cps[i];
            if (WHITESPACE.contains(cp)) {
                i++;
                continue;
            }
            int end;
            if (isRegionalIndicator(cp) && i + 1 < n && isRegionalIndicator(cps[i + 1])) {
                end = i + 2;  // (a) flag
            } else if ((end = number(cps, i)) > i) {
                // (b) number with separators
            } else if (isWordChar(cp)) {
                end = word(cps, i);  // (c) word
            } else {
                end = symbol(cps, i);  // (d) punctuation or symbol (every other non-space)
            }
            if (count + 2 > spans.length) spans = Arrays.copyOf(spans, spans.length * 2);
            spans[count++] = i;
            spans[count++] = end;
            i = end;
        }
        return Arrays.copyOf(spans, count);
    }

    /** [0-9]+(?:[.,][0-9]+)+ from i: its end, or i if it does not match. */
    private static int number(int[] cps, int i) {
        int j = digits(cps, i);
        if (j == i) return i;
        int groups = 0;
        while (j + 1 < cps.length && (cps[j] == '.' || cps[j] == ',') && isDigit(cps[j + 1])) {
            j = digits(cps, j + 1);
            groups++;
        }
        return groups > 0 ? j : i;
    }

    private static int digits(int[] cps, int i) {
        while (i < cps.length && isDigit(cps[i])) i++;
        return i;
    }

    /** W+(?:['\-]W+)* from a word character at i. */
    private int word(int[] cps, int i) {
        int j = wordChars(cps, i);
        while (j + 1 < cps.length && (cps[j] == '\'' || cps[j] == '-') && isWordChar(cps[j + 1])) {
            j = wordChars(cps, j + 1);
        }
        return j;
    }

    private int wordChars(int[] cps, int i) {
        while (i < cps.length && isWordChar(cps[i])) i++;
        return i;
    }

    /** P(?:C|ZWJ P)* from a punctuation character at i. */
    private int symbol(int[] cps, int i) {
        int j = i + 1;
        while (j < cps.length) {
            if (SYMBOL_CONTINUATION.contains(cps[j])) {
                j++;
            } else if (cps[j] == ZERO_WIDTH_JOINER && j + 1 < cps.length && tables.punctuation.contains(cps[j + 1])) {
                j += 2;
            } else {
                break;
            }
        }
        return j;
    }
}

package keyboardlm.core;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * The bundle's lexicon (keyboard_lm/phone/lexicon.py; docs/engine.md §16): words outside the
 * vocabulary with counts, read from lexicon.tsv.gz (gzip'd UTF-8, one {@code word<TAB>count}
 * line per word, sorted by key: the tokenizer's 1:1 lowercase, in code point order, keys
 * strictly increasing). A prefix index: the sorted keys (binary search), the counts and each
 * word's rank in count order (count descending, then key), which makes its extra id.
 */
public final class Lexicon {
    public static final int FORMAT_VERSION = 1;
    public static final String FILE = "lexicon.tsv.gz";
    /** A key followed by this bounds every key that starts with it. */
    static final String LAST = new String(Character.toChars(0x10FFFF));

    final String[] words;  // display forms, in key order
    final String[] keys;  // sorted, code point order
    final double[] counts;
    final double total;
    final int[] byCount;  // indices, count descending then key
    final int[] rank;  // index -> its position in byCount

    Lexicon(String[] words, String[] keys, double[] counts) {
        this.words = words;
        this.keys = keys;
        this.counts = counts;
        double sum = 0;
        for (double count : counts) sum += count;  // integers: exact, as numpy's sum
        this.total = sum;
        Integer[] order = new Integer[keys.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, new Comparator<Integer>() {
            @Override
            public int compare(Integer a, Integer b) {
                int c = Double.compare(counts[b], counts[a]);
                return c != 0 ? c : Integer.compare(a, b);
            }
        });
        byCount = new int[order.length];
        rank = new int[order.length];
        for (int i = 0; i < order.length; i++) {
            byCount[i] = order[i];
            rank[order[i]] = i;
        }
    }

    public int size() {
        return keys.length;
    }

    /** The word at index {@code i} (key order), in its own case. */
    public String word(int i) {
        return words[i];
    }

    public double count(int i) {
        return counts[i];
    }

    /** True if {@code key} (a lowercased word) is in the lexicon. */
    public boolean containsKey(String key) {
        int i = lowerBound(keys, key);
        return i < keys.length && keys[i].equals(key);
    }

    /** {lo, hi}: the indices of the keys that start with {@code keyPrefix}. */
    int[] range(String keyPrefix) {
        return new int[] {lowerBound(keys, keyPrefix), lowerBound(keys, keyPrefix + LAST)};
    }

    static int lowerBound(String[] sorted, String key) {
        return lowerBound(sorted, sorted.length, key);
    }

    static int lowerBound(String[] sorted, int length, String key) {
        int lo = 0, hi = length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (CodePoints.compare(sorted[mid], key) < 0) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /**
     * Reads the file's bytes and checks them (§16) against the vocabulary and the manifest's
     * word count; any fault is a one-line BundleException naming {@code where}, in the Python
     * loader's words.
     */
    static Lexicon parse(byte[] data, Vocabulary vocab, Tokenizer tokenizer, long expectedWords, String where)
            throws BundleException {
        String text;
        try {
            byte[] raw = Bytes.readAll(new GZIPInputStream(new ByteArrayInputStream(data)));
            text = Bytes.UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw)).toString();
        } catch (CharacterCodingException e) {
            throw new BundleException(where + ": not a gzip'd UTF-8 lexicon (not UTF-8: " + oneLine(e.toString()) + ")");
        } catch (IOException | RuntimeException e) {
            throw new BundleException(where + ": not a gzip'd UTF-8 lexicon (" + oneLine(String.valueOf(e.getMessage())) + ")");
        }
        if (!text.isEmpty() && !text.endsWith("\n")) {
            throw new BundleException(where + ": the last line has no newline (one word<TAB>count per line)");
        }
        List<String> lines = new ArrayList<>();
        for (int start = 0, end; start < text.length(); start = end + 1) {
            end = text.indexOf('\n', start);
            lines.add(text.substring(start, end));
        }
        if (lines.size() != expectedWords) {
            throw new BundleException(where + ": " + String.format("%,d", lines.size()) + " words, but manifest.json field lexicon.words is "
                    + String.format("%,d", expectedWords));
        }
        int n = lines.size();
        String[] words = new String[n], keys = new String[n];
        double[] counts = new double[n];
        for (int i = 0; i < n; i++) {
            String line = lines.get(i);
            int tab = line.indexOf('\t');
            boolean ok = tab > 0 && line.indexOf('\t', tab + 1) < 0 && tab + 1 < line.length();
            for (int j = tab + 1; ok && j < line.length(); j++) ok = line.charAt(j) >= '0' && line.charAt(j) <= '9';
            if (!ok) {
                throw new BundleException(where + ": line " + (i + 1) + ": expected word<TAB>positive count, got "
                        + Python.repr(CodePoints.length(line) > 60 ? line.substring(0, line.offsetByCodePoints(0, 60)) : line));
            }
            words[i] = line.substring(0, tab);
            String digits = line.substring(tab + 1);
            double count;
            try {
                count = Long.parseLong(digits);
            } catch (NumberFormatException e) {
                throw new BundleException(where + ": line " + (i + 1) + ": a count of " + digits.length() + " digits is too large");
            }
            counts[i] = count;
        }
        for (int i = 0; i < n; i++) {
            if (counts[i] < 1) {
                throw new BundleException(where + ": line " + (i + 1) + ": expected word<TAB>positive count, got a count of 0");
            }
        }
        for (int i = 0; i < n; i++) keys[i] = tokenizer.lowercase(words[i]);
        for (int i = 1; i < n; i++) {
            if (CodePoints.compare(keys[i - 1], keys[i]) >= 0) {
                throw new BundleException(where + ": line " + (i + 1) + ": " + Python.repr(words[i])
                        + " is out of order or repeats a word (the lines are sorted by word, each word once)");
            }
        }
        for (int i = 0; i < n; i++) {
            String form = vocab.lowercase() ? keys[i] : words[i];
            if (vocab.contains(form)) {
                throw new BundleException(where + ": line " + (i + 1) + ": " + Python.repr(words[i])
                        + " is in the vocabulary (the lexicon holds only words outside it)");
            }
        }
        return new Lexicon(words, keys, counts);
    }

    private static String oneLine(String message) {
        return message.trim().replaceAll("\\s+", " ");
    }
}

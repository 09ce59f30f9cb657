package keyboardlm.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Words the user teaches the keyboard (keyboard_lm/phone/user_words.py; docs/engine.md §17).
 *
 * A word typed in full that is neither in the vocabulary nor in the bundle's lexicon is counted
 * each time it is committed (the engine feeds it as unk); after {@code learnAfter} commits (2 by
 * default) it is learned, and the strip offers it like a lexicon word (§16). The engine undoes
 * a commit when the user backspaces into the word. {@link #remove} forgets a word and blocks
 * it (never learned again) until {@link #add} brings it back. Saved as the same JSON as the
 * Python side, byte for byte, beside the personal cache ({@link #wordsPath}).
 */
public final class UserWords {
    public static final int FORMAT_VERSION = 1;
    public static final int DEFAULT_LEARN_AFTER = 2;
    /** Longer words are never learned (nor written to a lexicon). */
    public static final int MAX_WORD_CHARS = 64;
    /** Code point order, as Python sorts strings. */
    static final Comparator<String> ORDER = new Comparator<String>() {
        @Override
        public int compare(String a, String b) {
            return CodePoints.compare(a, b);
        }
    };

    /** A learned word as {@link #words} lists it. */
    public static final class Word {
        public final String form;
        public final int count;

        Word(String form, int count) {
            this.form = form;
            this.count = count;
        }

        @Override
        public String toString() {
            return form + " " + count;
        }
    }

    /** Where a corrupt file's message goes (the app shows it once). */
    public interface Warning {
        void warn(String message);
    }

    private final int learnAfter;
    private final Tokenizer tokenizer = Tokenizer.standard();
    private final Map<String, Integer> counts = new HashMap<>();  // key -> commits
    private final Map<String, String> forms = new HashMap<>();  // key -> the case last typed
    private final TreeSet<String> blocked = new TreeSet<>(ORDER);
    private final Map<String, Map<String, Integer>> pairs = new HashMap<>();  // prev token -> key -> commits
    private final ArrayDeque<String[]> log = new ArrayDeque<>();  // commits, newest last: {key, prev, the form before}
    private String[] indexKeys, indexForms;  // the learned words, key order; null after a change
    private double[] indexCounts;

    public UserWords(int learnAfter) {
        if (learnAfter < 1) throw new IllegalArgumentException("learn_after must be a positive integer, got " + learnAfter);
        this.learnAfter = learnAfter;
    }

    public UserWords() {
        this(DEFAULT_LEARN_AFTER);
    }

    public int learnAfter() {
        return learnAfter;
    }

    /** How words are matched against prefixes and each other: the tokenizer's 1:1 lowercase. */
    public String key(String word) {
        return tokenizer.lowercase(word);
    }

    /**
     * A word the keyboard may learn (§17): 1-64 code points, no control, format, surrogate,
     * private-use or unassigned code point, at least one letter (not only digits or number
     * punctuation).
     */
    public static boolean learnable(String word) {
        int[] cps = CodePoints.of(word);
        if (cps.length == 0 || cps.length > MAX_WORD_CHARS) return false;
        boolean letter = false;
        for (int cp : cps) {
            letter |= Character.isLetter(cp);
            switch (Character.getType(cp)) {
                case Character.CONTROL:
                case Character.FORMAT:
                case Character.SURROGATE:
                case Character.PRIVATE_USE:
                case Character.UNASSIGNED:
                    return false;
                default:
                    break;
            }
        }
        return letter && !Tokenizer.endsWithSpace(word) && word.indexOf('\t') < 0 && word.indexOf('\n') < 0;
    }

    // -- learning -------------------------------------------------------------------------

    public boolean learned(String key) {
        Integer count = counts.get(key);
        return count != null && count >= learnAfter;
    }

    /**
     * The user committed {@code word} (outside the vocabulary and the lexicon) after the token
     * {@code prev}; returns true if it was counted (the engine undoes it on a backspace).
     */
    public boolean commit(String prev, String word) {
        String key = key(word);
        if (blocked.contains(key) || !learnable(word)) return false;
        log.addLast(new String[] {key, prev, forms.get(key)});
        counts.put(key, counts.containsKey(key) ? counts.get(key) + 1 : 1);
        forms.put(key, word);
        Map<String, Integer> following = pairs.get(prev);
        if (following == null) pairs.put(prev, following = new HashMap<>());
        following.put(key, following.containsKey(key) ? following.get(key) + 1 : 1);
        indexKeys = null;
        return true;
    }

    /** Takes back the latest counted commit (the user deleted that word). */
    public void undo() {
        if (log.isEmpty()) return;
        String[] last = log.removeLast();
        String key = last[0], prev = last[1], form = last[2];
        if (!counts.containsKey(key)) return;  // removed since
        counts.put(key, counts.get(key) - 1);
        Map<String, Integer> following = pairs.get(prev);
        if (following != null && following.containsKey(key) && following.get(key) > 0) {
            following.put(key, following.get(key) - 1);
            if (following.get(key) == 0) {
                following.remove(key);
                if (following.isEmpty()) pairs.remove(prev);
            }
        }
        if (counts.get(key) == 0) {
            counts.remove(key);
            forms.remove(key);
        } else if (form != null) {
            forms.put(key, form);
        }
        indexKeys = null;
    }

    /** The user adds {@code word}: learned at once, and no longer blocked. */
    public void add(String word) {
        if (!learnable(word)) {
            String shown = CodePoints.length(word) > 70 ? word.substring(0, word.offsetByCodePoints(0, 70)) : word;
            throw new IllegalArgumentException(Python.repr(shown) + ": not a word the keyboard can learn (1-64 characters, "
                    + "a letter, no control characters)");
        }
        String key = key(word);
        blocked.remove(key);
        counts.put(key, Math.max(counts.containsKey(key) ? counts.get(key) : 0, learnAfter));
        forms.put(key, word);
        indexKeys = null;
    }

    /** Forgets {@code word} and blocks it: never learned again until added back. Returns true if it had been learned. */
    public boolean remove(String word) {
        String key = key(word);
        boolean was = learned(key);
        counts.remove(key);
        forms.remove(key);
        for (String prev : new ArrayList<>(pairs.keySet())) {
            Map<String, Integer> following = pairs.get(prev);
            following.remove(key);
            if (following.isEmpty()) pairs.remove(prev);
        }
        blocked.add(key);
        indexKeys = null;
        return was;
    }

    /** The learned words, most committed first, then by key. */
    public List<Word> words() {
        List<String> keys = new ArrayList<>();
        for (String key : counts.keySet()) if (learned(key)) keys.add(key);
        Collections.sort(keys, new Comparator<String>() {
            @Override
            public int compare(String a, String b) {
                int c = Integer.compare(counts.get(b), counts.get(a));
                return c != 0 ? c : CodePoints.compare(a, b);
            }
        });
        List<Word> out = new ArrayList<>();
        for (String key : keys) out.add(new Word(forms.get(key), counts.get(key)));
        return out;
    }

    /** The blocked keys, in order. */
    public List<String> blocked() {
        return new ArrayList<>(blocked);
    }

    // -- scoring (docs/engine.md §16) -----------------------------------------------------

    private void index() {
        if (indexKeys != null) return;
        List<String> keys = new ArrayList<>();
        for (String key : counts.keySet()) if (learned(key)) keys.add(key);
        Collections.sort(keys, ORDER);
        indexKeys = keys.toArray(new String[0]);
        indexForms = new String[indexKeys.length];
        indexCounts = new double[indexKeys.length];
        for (int i = 0; i < indexKeys.length; i++) {
            indexForms[i] = forms.get(indexKeys[i]);
            indexCounts[i] = counts.get(indexKeys[i]);
        }
    }

    /** How many words are learned. */
    public int size() {
        index();
        return indexKeys.length;
    }

    /** The learned word {@code i} (key order), in its shown form. */
    String form(int i) {
        index();
        return indexForms[i];
    }

    /** {lo, hi}: the learned words (key order) whose key starts with {@code keyPrefix}. */
    int[] range(String keyPrefix) {
        index();
        return new int[] {Lexicon.lowerBound(indexKeys, keyPrefix), Lexicon.lowerBound(indexKeys, keyPrefix + Lexicon.LAST)};
    }

    /**
     * p_user(w | prev) for the learned words lo..hi (key order): the cache's bigram estimate
     * backed off to the unigram, smoothing 1 (§16), in the Python side's order of operations.
     */
    double[] probabilities(String prev, int lo, int hi) {
        index();
        double total = 0;
        for (double count : indexCounts) total += count;  // integers: exact
        Map<String, Integer> following = pairs.get(prev);
        long bigrams = 0;
        if (following != null) {
            for (Map.Entry<String, Integer> e : following.entrySet()) if (learned(e.getKey())) bigrams += e.getValue();
        }
        double[] out = new double[hi - lo];
        for (int i = lo; i < hi; i++) {
            Integer b = following == null || !learned(indexKeys[i]) ? null : following.get(indexKeys[i]);
            double p = indexCounts[i] / total;
            if (bigrams > 0) p = p + (b == null ? 0.0 : (double) b);
            out[i - lo] = p / (bigrams + 1.0);
        }
        return out;
    }

    // -- persistence ----------------------------------------------------------------------

    /** The file's text, as the Python side's json.dumps(to_json(), ensure_ascii=False) + "\n". */
    public String toJsonText() {
        StringBuilder out = new StringBuilder();
        out.append("{\"format_version\": ").append(FORMAT_VERSION).append(", \"learn_after\": ").append(learnAfter);
        out.append(", \"words\": [");
        List<String> keys = new ArrayList<>(counts.keySet());
        Collections.sort(keys, ORDER);
        for (int i = 0; i < keys.size(); i++) {
            out.append(i == 0 ? "[" : ", [");
            Python.jsonString(out, forms.get(keys.get(i)));
            out.append(", ").append(counts.get(keys.get(i))).append(']');
        }
        out.append("], \"blocked\": [");
        boolean first = true;
        for (String key : blocked) {
            if (!first) out.append(", ");
            Python.jsonString(out, key);
            first = false;
        }
        out.append("], \"pairs\": [");
        first = true;
        TreeMap<String, Map<String, Integer>> sorted = new TreeMap<>(ORDER);
        sorted.putAll(pairs);
        for (Map.Entry<String, Map<String, Integer>> prev : sorted.entrySet()) {
            TreeMap<String, Integer> following = new TreeMap<>(ORDER);
            following.putAll(prev.getValue());
            for (Map.Entry<String, Integer> e : following.entrySet()) {
                if (!forms.containsKey(e.getKey())) continue;
                out.append(first ? "[" : ", [");
                Python.jsonString(out, prev.getKey());
                out.append(", ");
                Python.jsonString(out, forms.get(e.getKey()));
                out.append(", ").append(e.getValue()).append(']');
                first = false;
            }
        }
        return out.append("]}\n").toString();
    }

    public JSONObject toJson() throws JSONException {
        return new JSONObject(toJsonText());
    }

    /** Writes the file atomically (a temporary beside it, then a rename). */
    public void save(File path) throws IOException {
        Bytes.writeAtomically(path, toJsonText().getBytes(Bytes.UTF8));
    }

    /** Where the user's words are saved beside a personal cache: cache.json -> cache.words.json. */
    public static File wordsPath(File cachePath) {
        String name = cachePath.getName();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        return new File(cachePath.getParentFile(), stem + ".words.json");
    }

    /** Reads a saved file; any fault is a one-line BundleException naming it. */
    public static UserWords load(File path) throws BundleException {
        String text;
        try {
            byte[] raw = Bytes.readAll(new FileInputStream(path));
            text = Bytes.UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw)).toString();
        } catch (CharacterCodingException e) {
            throw new BundleException(path + ": not a readable user-word file (not UTF-8)");
        } catch (IOException e) {
            throw new BundleException(path + ": not a readable user-word file (" + e.getMessage() + ")");
        }
        Object data;
        try {
            org.json.JSONTokener tokener = new org.json.JSONTokener(text);
            data = tokener.nextValue();
            while (tokener.more()) {  // json.loads: nothing but whitespace after the value
                char c = tokener.next();
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') throw new JSONException("extra data after the JSON value");
            }
        } catch (JSONException e) {
            throw new BundleException(path + ": not a readable user-word file (" + e.getMessage() + ")");
        }
        if (!(data instanceof JSONObject)) throw new BundleException(path + ": field format_version: expected " + FORMAT_VERSION);
        return fromJson((JSONObject) data, path.getPath());
    }

    /** A saved file's JSON, checked as the Python side checks it ({@code source} names it in messages). */
    public static UserWords fromJson(JSONObject data, String source) throws BundleException {
        if (!Vocabulary.isInt(data.opt("format_version"), FORMAT_VERSION)) {
            throw new BundleException(source + ": field format_version: expected " + FORMAT_VERSION);
        }
        Object learnAfter = data.has("learn_after") ? data.opt("learn_after") : DEFAULT_LEARN_AFTER;
        if (!isCount(learnAfter)) {
            throw new BundleException("learn_after must be a positive integer, got " + show(learnAfter));
        }
        UserWords words = new UserWords(((Number) learnAfter).intValue());
        JSONArray list = list(data, "words", source);
        for (int i = 0; i < list.length(); i++) {
            JSONArray entry = list.optJSONArray(i);
            if (entry == null || entry.length() != 2 || !(entry.opt(0) instanceof String) || !learnable(entry.optString(0))
                    || !isCount(entry.opt(1))) {
                throw new BundleException(source + ": field words[" + i + "]: expected [word, positive count], got "
                        + clip(String.valueOf(list.opt(i))));
            }
            String key = words.key(entry.optString(0));
            words.counts.put(key, entry.optInt(1));
            words.forms.put(key, entry.optString(0));
        }
        list = list(data, "blocked", source);
        for (int i = 0; i < list.length(); i++) {
            if (!(list.opt(i) instanceof String)) {
                throw new BundleException(source + ": field blocked[" + i + "]: expected a word, got " + clip(String.valueOf(list.opt(i))));
            }
            words.blocked.add(words.key(list.optString(i)));
        }
        list = list(data, "pairs", source);
        for (int i = 0; i < list.length(); i++) {
            JSONArray entry = list.optJSONArray(i);
            if (entry == null || entry.length() != 3 || !(entry.opt(0) instanceof String) || !(entry.opt(1) instanceof String)
                    || !isCount(entry.opt(2)) || !words.counts.containsKey(words.key(entry.optString(1)))) {
                throw new BundleException(source + ": field pairs[" + i + "]: expected [previous token, a listed word, positive count], got "
                        + clip(String.valueOf(list.opt(i))));
            }
            Map<String, Integer> following = words.pairs.get(entry.optString(0));
            if (following == null) words.pairs.put(entry.optString(0), following = new HashMap<>());
            String key = words.key(entry.optString(1));
            following.put(key, (following.containsKey(key) ? following.get(key) : 0) + entry.optInt(2));
        }
        return words;
    }

    private static JSONArray list(JSONObject data, String field, String source) throws BundleException {
        if (!data.has(field)) return new JSONArray();
        JSONArray list = data.optJSONArray(field);
        if (list == null) throw new BundleException(source + ": field " + field + ": expected a list, got " + clip(String.valueOf(data.opt(field))));
        return list;
    }

    /** A JSON integer from 1 to Integer.MAX_VALUE (not a boolean, not 2.0). */
    private static boolean isCount(Object value) {
        return (value instanceof Integer || value instanceof Long) && ((Number) value).longValue() > 0
                && ((Number) value).longValue() <= Integer.MAX_VALUE;
    }

    private static String show(Object value) {
        return value == JSONObject.NULL ? "None" : value instanceof String ? Python.repr((String) value) : String.valueOf(value);
    }

    private static String clip(String text) {
        return CodePoints.length(text) > 60 ? text.substring(0, text.offsetByCodePoints(0, 60)) : text;
    }

    /**
     * The user's words saved at {@code path}; none if there is no file. A corrupt file is kept
     * beside it (NAME.bad, or NAME.bad.1, ...) and the keyboard starts with no learned words,
     * saying so once through {@code warning}.
     */
    public static UserWords loadOrStart(File path, Warning warning) {
        if (!path.exists()) return new UserWords();
        try {
            return load(path);
        } catch (BundleException error) {
            File aside = new File(path.getParentFile(), path.getName() + ".bad");
            for (int number = 1; aside.exists(); number++) aside = new File(path.getParentFile(), path.getName() + ".bad." + number);
            String kept = path.renameTo(aside) ? "the file is kept as " + aside : "the file could not be moved aside: " + path;
            if (warning != null) warning.warn(error.getMessage() + "; starting with no learned words (" + kept + ")");
            return new UserWords();
        }
    }
}

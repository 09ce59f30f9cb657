package keyboardlm.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The text the on-device training reads (docs/engine.md §18.3): the messages the user finished in
 * fields that take suggestions, oldest first, never from a private field (§11) -- the controller
 * records only where {@link InputTypes#suggests} (KeyboardController's {@code committed}). Bounded:
 * at most {@link #MAX_CHARS} UTF-16 units, the oldest messages dropped first. Counts the words
 * committed since the last run for {@link TrainingSchedule}.
 *
 * Thread-safe: the controller adds on the UI thread, the training job reads on its own.
 * Saved as JSON (format_version 1, new_words, messages) in the app's private storage.
 */
public final class CommittedText {
    public static final int FORMAT_VERSION = 1;
    /** About 40,000 words: enough for a run, small enough to keep. */
    public static final int MAX_CHARS = 200_000;

    private final ArrayDeque<String> messages = new ArrayDeque<>();
    private final int maxChars;
    private long chars;
    private long newWords;

    public CommittedText() {
        this(MAX_CHARS);
    }

    public CommittedText(int maxChars) {
        if (maxChars < 1) throw new IllegalArgumentException("maxChars must be positive, got " + maxChars);
        this.maxChars = maxChars;
    }

    /** Records a finished message (nothing for one without a word character); drops the oldest past the bound. */
    public synchronized void add(String message) {
        int words = words(message);
        if (words == 0 || message.length() > maxChars) return;
        messages.addLast(message);
        chars += message.length();
        newWords += words;
        while (chars > maxChars) chars -= messages.removeFirst().length();
    }

    /** The messages, oldest first (a copy). */
    public synchronized List<String> messages() {
        return new ArrayList<>(messages);
    }

    /** Words committed since the last {@link #startRun} (or ever). */
    public synchronized long newWords() {
        return newWords;
    }

    /** A training run starts: the messages to train on (a copy), and the new-word count starts again from 0. */
    public synchronized List<String> startRun() {
        newWords = 0;
        return new ArrayList<>(messages);
    }

    /** Forgets every message (the user cleared what the keyboard learned). */
    public synchronized void clear() {
        messages.clear();
        chars = 0;
        newWords = 0;
    }

    /**
     * Words in {@code text} for the schedule: runs of non-whitespace (the tokenizer's whitespace)
     * holding a letter or a digit. Needs no tables, so the UI thread can count.
     */
    static int words(String text) {
        int count = 0;
        boolean inRun = false, wordy = false;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (Tokenizer.isSpace(cp)) {
                if (inRun && wordy) count++;
                inRun = wordy = false;
            } else {
                inRun = true;
                wordy |= Character.isLetterOrDigit(cp);
            }
        }
        return inRun && wordy ? count + 1 : count;
    }

    public synchronized JSONObject toJson() throws JSONException {
        JSONArray list = new JSONArray();
        for (String message : messages) list.put(message);
        return new JSONObject().put("format_version", FORMAT_VERSION).put("new_words", newWords).put("messages", list);
    }

    /** A saved buffer; any fault is a one-line BundleException naming {@code source} and the field. */
    public static CommittedText fromJson(JSONObject data, String source) throws BundleException {
        if (!Vocabulary.isInt(data.opt("format_version"), FORMAT_VERSION)) {
            throw new BundleException(source + ": field format_version: expected " + FORMAT_VERSION + ", got " + data.opt("format_version"));
        }
        Object count = data.opt("new_words");
        if (!(count instanceof Integer || count instanceof Long) || ((Number) count).longValue() < 0) {
            throw new BundleException(source + ": field new_words: expected a count, got " + count);
        }
        JSONArray list = data.optJSONArray("messages");
        if (list == null) throw new BundleException(source + ": field messages: expected a list of strings");
        CommittedText text = new CommittedText();
        for (int i = 0; i < list.length(); i++) {
            Object message = list.opt(i);
            if (!(message instanceof String)) throw new BundleException(source + ": field messages[" + i + "]: expected a string");
            text.add((String) message);
        }
        text.newWords = ((Number) count).longValue();
        return text;
    }
}

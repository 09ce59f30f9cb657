package keyboardlm.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CodingErrorAction;
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
 * Saved as JSON (format_version 1, new_words, messages) in the app's private storage ({@link #save},
 * {@link #loadOrStart}).
 */
public final class CommittedText {
    public static final int FORMAT_VERSION = 1;
    /** About 40,000 words: enough for a run, small enough to keep. */
    public static final int MAX_CHARS = 200_000;

    private final ArrayDeque<String> messages = new ArrayDeque<>();
    private final int maxChars;
    private long chars;
    private long newWords;
    private long changes;  // bumped at every change
    private File savedAt;  // the file last saved to or loaded from, and the changes count then
    private long savedChanges;
    private final Object saving = new Object();  // one save at a time

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
        changes++;
        chars += message.length();
        newWords += words;
        while (chars > maxChars) chars -= messages.removeFirst().length();
    }

    /** The messages, oldest first (a copy). */
    public synchronized List<String> messages() {
        return new ArrayList<>(messages);
    }

    /** Words committed since the last run ({@link #startRun}, {@link #endRun}), or ever. */
    public synchronized long newWords() {
        return newWords;
    }

    /** A training run starts: the messages to train on (a copy), and the new-word count starts again from 0. */
    public synchronized List<String> startRun() {
        newWords = 0;
        changes++;
        return new ArrayList<>(messages);
    }

    /**
     * A training run on the messages there were when {@link #newWords} was {@code counted} has
     * ended ({@link NightlyAdaptation}): those words no longer count; words committed since still do.
     */
    public synchronized void endRun(long counted) {
        newWords = Math.max(0, newWords - Math.max(0, counted));
        changes++;
    }

    /** Forgets every message (the user cleared what the keyboard learned). */
    public synchronized void clear() {
        messages.clear();
        chars = 0;
        newWords = 0;
        changes++;
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

    /**
     * Writes the buffer to {@code path} (whole, beside it, then renamed over it) unless it is as it
     * was last saved there or loaded from there; true if it wrote. Any thread.
     */
    public boolean save(File path) throws IOException {
        synchronized (saving) {  // each save writes the buffer as it is when it starts: the last one wins
            byte[] data;
            long version;
            synchronized (this) {  // the disk write below does not hold up add (the UI thread)
                if (path.equals(savedAt) && savedChanges == changes) return false;
                version = changes;
                try {
                    data = toJson().toString().getBytes(Bytes.UTF8);
                } catch (JSONException e) {
                    throw new IOException(path + ": " + e.getMessage(), e);
                }
            }
            Bytes.writeAtomically(path, data);
            synchronized (this) {
                savedAt = path;
                savedChanges = version;
            }
            return true;
        }
    }

    /** Reads a saved buffer; any fault is a one-line BundleException naming the file and the field. */
    public static CommittedText load(File path) throws BundleException {
        JSONObject data;
        try {
            byte[] raw = Bytes.readAll(new FileInputStream(path));
            data = new JSONObject(Bytes.UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw)).toString());
        } catch (IOException | JSONException e) {  // not UTF-8 (CharacterCodingException), unreadable, not JSON
            throw new BundleException(path + ": not a readable committed-text file (" + String.valueOf(e.getMessage())
                    .replaceAll("\\s+", " ").trim() + ")");
        }
        CommittedText text = fromJson(data, path.getPath());
        text.savedAt = path;
        text.savedChanges = text.changes;
        return text;
    }

    /**
     * The buffer saved at {@code path}, or an empty one: none saved yet, or one that does not read
     * (said in one line to {@code warning}; the next {@link #save} replaces it -- the user's text is
     * not copied aside).
     */
    public static CommittedText loadOrStart(File path, UserWords.Warning warning) {
        if (!path.exists()) return new CommittedText();
        try {
            return load(path);
        } catch (BundleException e) {
            if (warning != null) warning.warn(e.getMessage() + "; starting with no committed text");
            return new CommittedText();
        }
    }
}

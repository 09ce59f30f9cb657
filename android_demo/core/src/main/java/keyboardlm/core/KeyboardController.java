package keyboardlm.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Executor;

/**
 * The input method's logic, with no Android in it: the app's KeyboardService and DemoActivity
 * forward every editor event here and apply what comes back through {@link Editor}.
 *
 * Threads. Every public method is called on the UI thread, and every {@link Editor} call is
 * made on it. The bundle load, the model, the engine, the personal cache and the user's words
 * are touched only by tasks on {@code worker} (one background thread); strips come back
 * through {@code ui}. The app lists, adds, removes ({@link #withUserWords}) and saves
 * ({@link #saveUserWords}) the user's words through tasks on the worker too.
 * Each change of the text (or of the field) bumps {@link #generation}; a strip computed for an
 * older generation is dropped, and a tap on a strip shown for an older text does nothing.
 * The worker always applies the latest text (requests coalesce: a prime nobody waits for any
 * more is skipped if it has not started).
 *
 * Text. The controller keeps {@link #text}, the text before the cursor as it last read it
 * (at most {@link #READ_CHARS} UTF-16 units: the engine's CONTEXT_CHARS code points, however
 * the field is long) plus its own edits. On a selection update it reads the editor again: text
 * added after its own is typed on; anything else (a touch moved the cursor, the app edited)
 * resets the engine on what it read.
 *
 * Private fields ({@link InputTypes#isPrivate}) and fields that are not text: no strip, no
 * model call, nothing learned (their text never reaches the worker, so no word typed there is
 * counted towards the user's words). docs/engine.md §13 specifies this class's part (when it
 * types on and when it resets the engine, shift), §11 private fields, §17 the user's words.
 *
 * Committed text (§18.3, optional): a message the user typed in a field that takes suggestions
 * is recorded in {@link CommittedText} when it is finished -- the enter key performs the editor's
 * action (send, search, ...) or the field loses the keyboard -- never from a private field. (A
 * message an app sends with its own button, emptying the field, is not recorded: the controller
 * sees only the text before the cursor, and an emptied field looks like a cursor moved to the start.)
 */
public final class KeyboardController {
    /** UTF-16 units read before the cursor: enough for the engine's window of CONTEXT_CHARS code points. */
    public static final int READ_CHARS = 2 * KeyboardEngine.CONTEXT_CHARS;

    /** The editor, as the controller drives it (the app: an InputConnection, or an EditText). */
    public interface Editor {
        /** Up to {@code maxChars} UTF-16 units before the cursor; null without a connection. */
        String textBeforeCursor(int maxChars);

        /** Inserts {@code text} at the cursor (replacing the selection; the composing text if any). */
        void commitText(String text);

        /** Deletes {@code chars} UTF-16 units before the cursor. */
        void deleteBefore(int chars);

        /** One edit (a batch): delete {@code delete} UTF-16 units before the cursor, then insert {@code insert}. */
        void replaceBefore(int delete, String insert);

        /** A KEYCODE_DEL key down and up (backspace with nothing before the cursor). */
        void sendDeleteKey();

        /** Ends the editor's composing region, keeping its text. */
        void finishComposing();

        /** Performs the editor's action (EditorInfo.IME_ACTION_*), e.g. send or search. */
        void performEditorAction(int action);

        /** Shows {@code words} (possibly none), or {@code message} instead when it is not null. */
        void showStrip(List<String> words, String message);

        /** The shift key's state: letters are typed (and labelled) upper case while on. */
        void setShift(boolean on);
    }

    /** Something the app does with the user's words (list, add, remove them), run on the worker. */
    public interface WordsTask {
        /** {@code words}: the controller's user words, or null when it has none. */
        void run(UserWords words);
    }

    /** A strip as shown: its words, the text each tap leaves, and the generation it belongs to. */
    private static final class Shown {
        final long generation;
        final List<String> words;
        final List<String> after;

        Shown(long generation, List<String> words, List<String> after) {
            this.generation = generation;
            this.words = words;
            this.after = after;
        }
    }

    private final Editor editor;
    private final BundleSource source;
    private final KeyboardSession.ModelFactory models;
    private final PersonalCache cache;
    private final UserWords userWords;
    private final CommittedText committed;
    private final Executor worker;
    private final Executor ui;

    // UI thread only
    private boolean active;
    private boolean suggests;
    private int imeOptions;
    private String text = "";
    private boolean composing;
    private boolean selection;
    private boolean shift;
    private boolean edited;  // the user typed in this field since it opened or since its text was last committed
    private Shown shown;
    private volatile long generation;  // written on the UI thread only

    // what the worker is asked to do (guarded by the lock)
    private final Object lock = new Object();
    private String wantText = "";
    private String wantResetText;  // the text of the latest reset not yet applied (its prime is not learned), or null
    private boolean wantLoad;
    private long wantGeneration;
    private long applied;

    // worker thread only
    private KeyboardSession session;
    private String loadedManifest;
    private File savedTo;  // where the user's words were last saved, and what was written
    private String savedWords;

    /**
     * {@code cache}: the personal cache the engine learns into (null: none); {@code userWords}:
     * the words the user teaches the keyboard (docs/engine.md §17; null: none, no word is
     * learned). Both belong to the caller, survive a bundle reload, a bundle that fails and a
     * model that throws, and are touched only on the worker from here on. {@code committed}: where
     * finished messages go for the on-device training (docs/engine.md §18.3; null: nowhere), added
     * to on the UI thread. {@code worker}: one background thread (tasks run in order); {@code ui}:
     * the UI thread.
     */
    public KeyboardController(Editor editor, BundleSource source, KeyboardSession.ModelFactory models,
                              PersonalCache cache, UserWords userWords, CommittedText committed, Executor worker, Executor ui) {
        this.editor = editor;
        this.source = source;
        this.models = models;
        this.cache = cache;
        this.userWords = userWords;
        this.committed = committed;
        this.worker = worker;
        this.ui = ui;
    }

    /** A controller that records no committed text. */
    public KeyboardController(Editor editor, BundleSource source, KeyboardSession.ModelFactory models,
                              PersonalCache cache, UserWords userWords, Executor worker, Executor ui) {
        this(editor, source, models, cache, userWords, null, worker, ui);
    }

    /** A controller without user words. */
    public KeyboardController(Editor editor, BundleSource source, KeyboardSession.ModelFactory models,
                              PersonalCache cache, Executor worker, Executor ui) {
        this(editor, source, models, cache, null, worker, ui);
    }

    // -- editor events (UI thread) ----------------------------------------------------------

    /** A field got the keyboard (onStartInputView): its EditorInfo.inputType and imeOptions. */
    public void onStartInput(int inputType, int imeOptions) {
        this.imeOptions = imeOptions;
        active = true;
        suggests = InputTypes.suggests(inputType, imeOptions);  // false in private fields: no strip, no model, no learning
        composing = true;  // unknown until the first selection update: finish it before editing
        selection = false;
        edited = false;
        shown = null;
        String before = editor.textBeforeCursor(READ_CHARS);
        text = before == null ? "" : before;
        generation++;
        editor.showStrip(Collections.<String>emptyList(), null);
        rearm();
        if (suggests) request(true, true);
    }

    /** The field lost the keyboard (onFinishInput, onFinishInputView): the strip goes, late strips are dropped. */
    public void onFinishInput() {
        commit();
        active = false;
        shown = null;
        generation++;
        editor.showStrip(Collections.<String>emptyList(), null);
    }

    /**
     * onUpdateSelection: the new selection and the composing region (candidatesStart/End, -1
     * when there is none), in the editor's offsets.
     */
    public void onUpdateSelection(int selStart, int selEnd, int composingStart, int composingEnd) {
        if (!active) return;
        composing = composingStart >= 0 && composingEnd > composingStart;
        selection = selStart != selEnd;
        sync(Math.min(selStart, selEnd));
    }

    /** A character key ({@code characters} as labelled in lower case; shift applies here). */
    public void onKey(String characters) {
        if (!active) return;
        String typed = shift ? characters.toUpperCase(Locale.ROOT) : characters;
        finishComposing();
        boolean replaced = selection;
        edited = true;
        changed(replaced ? text : text + typed, false);  // a replaced selection: the selection update resyncs
        editor.commitText(typed);
        rearm();
    }

    public void onBackspace() {
        if (!active) return;
        finishComposing();
        edited = true;
        if (selection) {
            editor.commitText("");  // deletes the selection; its selection update resyncs
        } else if (text.isEmpty()) {
            editor.sendDeleteKey();  // editors act on it (a chat app: delete the last attachment)
        } else {
            String after = CodePoints.dropLast(text);
            int chars = text.length() - after.length();
            changed(after, false);
            editor.deleteBefore(chars);
        }
        rearm();
    }

    /** The enter key: the editor's action (send, search, ...) if it has one, else a new line. */
    public void onEnter() {
        if (!active) return;
        int action = InputTypes.enterAction(imeOptions);
        if (action != InputTypes.IME_ACTION_NONE) {
            commit();  // the message is sent (searched, ...)
            editor.performEditorAction(action);
        } else {
            onKey("\n");
        }
    }

    public void onShiftKey() {
        setShift(!shift);
    }

    /** A tap on strip slot {@code slot}: the word the user saw, or nothing if the text changed under it. */
    public void onTap(int slot) {
        if (!active || !suggests) return;
        sync(-1);  // an edit not yet reported bumps the generation: the strip is then stale
        Shown strip = shown;
        if (strip == null || strip.generation != generation || strip.after == null || slot < 0
                || slot >= strip.words.size()) {
            return;
        }
        String after = strip.after.get(slot);
        TextEdit edit = TextEdit.between(text, after);
        finishComposing();
        edited = true;
        changed(after, false);
        editor.replaceBefore(edit.delete, edit.insert);
        rearm();
    }

    /**
     * Runs {@code task} with the user's words on the worker, after the work asked for so far:
     * the only thread that may touch them. A result goes back to the UI thread through the
     * app's own executor. The task must not throw ({@link UserWords#add} does for a word it
     * cannot learn: check {@link UserWords#learnable} first). The strip is then asked again,
     * so an added or removed word shows (or goes) at once.
     */
    public void withUserWords(WordsTask task) {
        worker.execute(() -> {
            task.run(userWords);
            ui.execute(this::refresh);
        });
    }

    /**
     * Saves the user's words to {@code path} ({@link UserWords#save}: written whole, then
     * renamed) on the worker, after the work asked for so far: the app calls it when input
     * finishes. Nothing is written without user words, nor when they are as last saved there.
     * A failure's one-line message goes to {@code failed} on the UI thread (null: dropped).
     */
    public void saveUserWords(File path, UserWords.Warning failed) {
        worker.execute(() -> {
            if (userWords == null) return;
            String words = userWords.toJsonText();
            if (path.equals(savedTo) && words.equals(savedWords)) return;
            try {
                userWords.save(path);
                savedTo = path;
                savedWords = words;
            } catch (IOException | RuntimeException e) {
                String message = path + ": the learned words could not be saved (" + e + ")";
                if (failed != null) ui.execute(() -> failed.warn(message));
            }
        });
    }

    /**
     * The model's inputs changed though the bundle did not (a new adapter, docs/engine.md §18.5):
     * the next start of input in a field that takes suggestions reopens the session, as for a new bundle.
     */
    public void reloadModel() {
        worker.execute(() -> loadedManifest = null);
    }

    /** Releases the model (the app: onDestroy); the caller shuts the worker down after. */
    public void close() {
        active = false;
        generation++;
        worker.execute(() -> {
            if (session != null) session.close();
            session = null;
        });
    }

    /** The text before the cursor as the controller holds it (tests). */
    public String text() {
        return text;
    }

    public boolean shift() {
        return shift;
    }

    // -- internals (UI thread) -------------------------------------------------------------

    /** Reads the editor; resyncs if its text before the cursor is not the controller's. */
    private void sync(int cursor) {
        String before = editor.textBeforeCursor(READ_CHARS);
        if (before == null) return;
        boolean cut = before.length() >= READ_CHARS || (cursor >= 0 && before.length() < cursor);
        if (before.equals(text) || (cut && text.endsWith(before))) return;  // in step
        changed(before, !before.startsWith(text));
        rearm();
    }

    private void changed(String newText, boolean reset) {
        text = newText;
        generation++;
        if (suggests) request(reset, false);
    }

    /** The field's text is a finished message: recorded if the user typed in it, never in a private field (§18.3). */
    private void commit() {
        if (committed != null && suggests && edited && !text.isEmpty()) committed.add(text);
        edited = false;
    }

    private void finishComposing() {
        if (composing) editor.finishComposing();
        composing = false;
    }

    /** Shift on at a field's start and at each sentence start (text fields that take suggestions), else off. */
    private void rearm() {
        setShift(suggests && sentenceStart(text));
    }

    private void setShift(boolean on) {
        shift = on;
        editor.setShift(on);
    }

    /** An empty field, or a sentence end followed by whitespace ("Hi. |"). */
    static boolean sentenceStart(String text) {
        int end = text.length();
        while (end > 0 && Tokenizer.isSpace(text.charAt(end - 1))) end--;
        if (end == 0) return true;
        if (end == text.length()) return false;
        char last = text.charAt(end - 1);
        return last == '.' || last == '!' || last == '?' || text.charAt(text.length() - 1) == '\n';
    }

    /** Asks the worker to bring the engine to {@link #text} (resetting it; loading the bundle first). */
    private void request(boolean reset, boolean load) {
        synchronized (lock) {
            wantText = text;
            if (reset) wantResetText = text;
            wantLoad |= load;
            wantGeneration = generation;
        }
        worker.execute(this::work);
    }

    /** The strip again for the same text (the user's words changed). */
    private void refresh() {
        if (!active || !suggests) return;
        generation++;
        request(false, false);
    }

    private void publish(long of, List<String> words, List<String> after, String message) {
        if (of != generation || !active) return;  // the text changed since: stale
        shown = new Shown(of, words, after);
        editor.showStrip(words, message);
    }

    // -- the worker ------------------------------------------------------------------------

    private void work() {
        String target, resetText;
        boolean load;
        long of;
        synchronized (lock) {
            if (wantGeneration == applied) return;  // done by an earlier task
            target = wantText;
            resetText = wantResetText;
            load = wantLoad;
            of = wantGeneration;
            wantResetText = null;
            wantLoad = false;
            applied = of;
        }
        if ((load || session == null) && load() && resetText == null) resetText = "";
        if (resetText != null) session.reset(resetText);  // what the field held: primed, not learned
        List<String> words = session.setText(target);  // what the user typed since: learned
        List<String> after = session.afterTaps(words);
        String message = session.message();
        List<String> shownWords = after == null ? Collections.<String>emptyList() : words;
        ui.execute(() -> publish(of, shownWords, after, message));
    }

    /** (Re)opens the session if the bundle changed or the last one failed; true if it did. */
    private boolean load() {
        String manifest;
        BundleFiles files = null;
        try {
            files = source.files();
            manifest = Bytes.sha256(files.read("manifest.json"));
        } catch (IOException | RuntimeException e) {
            manifest = null;  // Bundle.load says what is wrong
        }
        if (session != null && session.ready() && manifest != null && manifest.equals(loadedManifest)) return false;
        if (session != null) session.close();
        session = files == null ? KeyboardSession.failed("no bundle") : KeyboardSession.open(files, models, cache, userWords);
        loadedManifest = session.ready() ? manifest : null;
        return true;
    }
}

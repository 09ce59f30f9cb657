package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.json.JSONObject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scripted editor sessions against KeyboardController (the app's KeyboardService and
 * DemoActivity only forward to it): a recording editor that behaves as Android's
 * InputConnection does (commitText replaces the composing region, else the selection), a
 * model fake that counts, records its thread, can throw or block, and the toy bundle.
 */
class ControllerTest {
    @TempDir
    File dir;

    private Bundle bundle;

    @BeforeEach
    void copyBundle() throws Exception {
        Fixtures.copyBundle(Fixtures.path("kblm.bundle"), dir);
        bundle = Bundle.load(BundleFiles.directory(dir));
    }

    private void write(String name, byte[] data) throws IOException {
        try (FileOutputStream out = new FileOutputStream(new File(dir, name))) {
            out.write(data);
        }
    }

    // -- fakes ----------------------------------------------------------------------------

    /** Runs tasks when told to, on the calling thread (the test thread plays the UI thread). */
    static final class QueueExecutor implements java.util.concurrent.Executor {
        final ArrayDeque<Runnable> tasks = new ArrayDeque<>();

        @Override
        public synchronized void execute(Runnable task) {
            tasks.add(task);
        }

        synchronized Runnable next() {
            return tasks.poll();
        }

        /** Runs tasks until none is left; returns how many ran. */
        int runAll() {
            int n = 0;
            for (Runnable task = next(); task != null; task = next()) {
                task.run();
                n++;
            }
            return n;
        }
    }

    /** An editor as Android's InputConnection behaves, recording every call and its thread. */
    static final class RecordingEditor implements KeyboardController.Editor {
        final StringBuilder content = new StringBuilder();
        int selStart, selEnd, composingStart = -1, composingEnd = -1;
        final List<String> calls = new ArrayList<>();
        final Set<Thread> threads = Collections.synchronizedSet(new HashSet<Thread>());
        final List<List<String>> strips = new ArrayList<>();
        final List<String> messages = new ArrayList<>();
        int deleteKeys;
        Boolean shift;

        RecordingEditor(String text) {
            set(text, text.length());
        }

        void set(String text, int cursor) {
            content.setLength(0);
            content.append(text);
            selStart = selEnd = cursor;
            composingStart = composingEnd = -1;
        }

        /** What the editor reports next: KeyboardService forwards onUpdateSelection. */
        void report(KeyboardController controller) {
            controller.onUpdateSelection(selStart, selEnd, composingStart, composingEnd);
        }

        private void record(String call) {
            threads.add(Thread.currentThread());
            calls.add(call);
        }

        List<String> lastStrip() {
            return strips.get(strips.size() - 1);
        }

        String text() {
            return content.toString();
        }

        @Override
        public String textBeforeCursor(int maxChars) {
            record("read");
            return content.substring(Math.max(0, selStart - maxChars), selStart);
        }

        @Override
        public void commitText(String text) {
            record("commit " + text);
            int start = composingStart >= 0 ? composingStart : selStart, end = composingStart >= 0 ? composingEnd : selEnd;
            content.replace(start, end, text);
            selStart = selEnd = start + text.length();
            composingStart = composingEnd = -1;
        }

        @Override
        public void deleteBefore(int chars) {
            record("delete " + chars);
            int start = Math.max(0, selStart - chars);
            content.delete(start, selStart);
            selEnd = selStart = start;
        }

        @Override
        public void replaceBefore(int delete, String insert) {
            record("replace " + delete + " " + insert);
            int start = Math.max(0, selStart - delete);
            content.replace(start, selEnd, insert);
            selStart = selEnd = start + insert.length();
            composingStart = composingEnd = -1;
        }

        @Override
        public void sendDeleteKey() {
            record("KEYCODE_DEL");
            deleteKeys++;
        }

        @Override
        public void finishComposing() {
            record("finishComposing");
            composingStart = composingEnd = -1;
        }

        @Override
        public void performEditorAction(int action) {
            record("action " + action);
        }

        @Override
        public void showStrip(List<String> words, String message) {
            record("strip " + words + (message == null ? "" : " " + message));
            strips.add(new ArrayList<>(words));
            messages.add(message);
        }

        @Override
        public void setShift(boolean on) {
            record("shift " + on);
            shift = on;
        }
    }

    /** Uniform log-probabilities; counts steps, records its threads; can throw or block at a step. */
    static final class FakeModel extends ZeroModel {
        final AtomicInteger steps;
        final Set<Thread> threads;
        int throwAt = -1;
        int blockAt = -1;
        final CountDownLatch entered = new CountDownLatch(1), release = new CountDownLatch(1);

        FakeModel(Bundle bundle, AtomicInteger steps, Set<Thread> threads) {
            super(bundle.vocabulary.size(), bundle.stateSizes);
            this.steps = steps;
            this.threads = threads;
        }

        @Override
        public Step step(int token, float[][] state) {
            threads.add(Thread.currentThread());
            int n = steps.incrementAndGet();
            if (n == throwAt) throw new IllegalStateException("the interpreter failed");
            if (n == blockAt) {
                entered.countDown();
                try {
                    release.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return super.step(token, state);
        }
    }

    /** Opens FakeModels that share a step counter; remembers each. */
    final class Models implements KeyboardSession.ModelFactory {
        final AtomicInteger steps = new AtomicInteger();
        final Set<Thread> threads = Collections.synchronizedSet(new HashSet<Thread>());
        final List<FakeModel> opened = Collections.synchronizedList(new ArrayList<FakeModel>());
        final List<Bundle> bundles = Collections.synchronizedList(new ArrayList<Bundle>());
        int throwAt = -1, blockAt = -1;

        @Override
        public StepModel open(Bundle loaded) {
            threads.add(Thread.currentThread());
            FakeModel model = new FakeModel(loaded, steps, threads);
            model.throwAt = throwAt;
            model.blockAt = blockAt;
            opened.add(model);
            bundles.add(loaded);
            return model;
        }
    }

    private final QueueExecutor worker = new QueueExecutor(), ui = new QueueExecutor();
    private final Models models = new Models();

    private KeyboardController controller(RecordingEditor editor, PersonalCache cache) {
        return new KeyboardController(editor, BundleSource.of(BundleFiles.directory(dir)), models, cache, worker, ui);
    }

    private KeyboardController controller(RecordingEditor editor, PersonalCache cache, UserWords words) {
        return new KeyboardController(editor, BundleSource.of(BundleFiles.directory(dir)), models, cache, words, worker, ui);
    }

    /** The field before is left, a new one of {@code inputType} starts empty, {@code keys} are typed, the worker catches up. */
    private void field(KeyboardController controller, RecordingEditor editor, int inputType, int imeOptions, String keys) {
        controller.onFinishInput();
        editor.set("", 0);
        controller.onStartInput(inputType, imeOptions);
        type(controller, editor, keys);
        settle();
    }

    /** Lets the worker and then the UI thread catch up. */
    private void settle() {
        while (worker.runAll() + ui.runAll() > 0) {
            // until both are idle
        }
    }

    private void type(KeyboardController controller, RecordingEditor editor, String keys) {
        for (char c : keys.toCharArray()) {
            if (c == '\b') controller.onBackspace();
            else controller.onKey(String.valueOf(c));
            editor.report(controller);  // the editor's selection update follows each edit
        }
    }

    /** The strip a fresh engine shows for {@code text} (the same fake model answers). */
    private List<String> expectedStrip(String text) throws Exception {
        KeyboardEngine engine = new KeyboardEngine(bundle, new ZeroModel(bundle.vocabulary.size(), bundle.stateSizes));
        engine.reset(text);
        return engine.strip();
    }

    private static final int TEXT = InputTypes.TYPE_CLASS_TEXT;

    // -- sessions -------------------------------------------------------------------------

    @Test
    void typingShowsTheEnginesStripAndATapInsertsTheWordShown() throws Exception {
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        type(controller, editor, "see you at the sta");
        settle();
        assertEquals(expectedStrip("See you at the sta"), editor.lastStrip());
        String word = editor.lastStrip().get(0);
        assertTrue(word.startsWith("sta"), word);
        controller.onTap(0);
        editor.report(controller);
        assertEquals("See you at the " + word + " ", editor.text());
        settle();
        assertEquals(expectedStrip(editor.text()), editor.lastStrip());
    }

    @Test
    void noModelCallOnTheUiThread() throws Exception {
        ExecutorService background = Executors.newSingleThreadExecutor();
        try {
            RecordingEditor editor = new RecordingEditor("i think the train is late . see you at the ");
            KeyboardController controller = new KeyboardController(editor, BundleSource.of(BundleFiles.directory(dir)),
                    models, null, background, ui);
            controller.onStartInput(TEXT, 0);
            for (char c : "station tonight . we met at the pa".toCharArray()) {
                controller.onKey(String.valueOf(c));
                editor.report(controller);
                ui.runAll();
            }
            background.submit(() -> { }).get(20, TimeUnit.SECONDS);  // the worker is idle
            ui.runAll();
            controller.onTap(0);
            editor.report(controller);
            background.submit(() -> { }).get(20, TimeUnit.SECONDS);
            ui.runAll();
            assertTrue(models.steps.get() > 20, "the model stepped " + models.steps.get() + " times");
            assertFalse(models.threads.contains(Thread.currentThread()), "a model call ran on the UI thread");
            assertEquals(Collections.singleton(Thread.currentThread()), new HashSet<>(editor.threads),
                    "an editor call ran off the UI thread");
            assertEquals(expectedStrip(editor.text()), editor.lastStrip());
            assertTrue(editor.text().startsWith("i think the train is late . see you at the station tonight . We met at the pa"),
                    editor.text());
        } finally {
            background.shutdownNow();
        }
    }

    @Test
    void aCursorJumpDuringASlowPrimeDropsTheStaleStrip() throws Exception {
        ExecutorService background = Executors.newSingleThreadExecutor();
        try {
            String draft = "see you at the sta";
            RecordingEditor editor = new RecordingEditor(draft);
            models.blockAt = 2;  // step 1: bos when the engine is made; step 2: the prime of the draft
            KeyboardController controller = new KeyboardController(editor, BundleSource.of(BundleFiles.directory(dir)),
                    models, null, background, ui);
            controller.onStartInput(TEXT, 0);
            while (models.opened.isEmpty()) Thread.sleep(1);
            FakeModel model = models.opened.get(0);
            assertTrue(model.entered.await(20, TimeUnit.SECONDS), "the prime did not start");
            editor.set(draft, "see you at the ".length());  // the user touches before "sta" while it primes
            editor.report(controller);
            model.release.countDown();
            background.submit(() -> { }).get(20, TimeUnit.SECONDS);
            ui.runAll();
            List<String> stale = expectedStrip(draft), fresh = expectedStrip("see you at the ");
            assertFalse(stale.equals(fresh), "the test needs two different strips");
            assertFalse(editor.strips.contains(stale), "the strip of the text before the jump was shown: " + editor.strips);
            assertEquals(fresh, editor.lastStrip());
            controller.onTap(0);
            assertEquals("see you at the " + fresh.get(0) + " sta", editor.text());
        } finally {
            background.shutdownNow();
        }
    }

    @Test
    void aTapAfterTheTextChangedUnderItInsertsNothing() throws Exception {
        RecordingEditor editor = new RecordingEditor("see you at the sta");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        assertTrue(editor.lastStrip().get(0).startsWith("sta"));
        editor.set("we met at the pa", 16);  // the app replaced the text; its selection update is not in yet
        controller.onTap(0);
        assertEquals("we met at the pa", editor.text(), "a word the user never saw for this text");
        settle();
        assertTrue(editor.lastStrip().get(0).startsWith("pa"), editor.lastStrip().toString());
        // typed on, the strip for the new text not back yet: the old strip's tap does nothing either
        controller.onKey("r");
        editor.report(controller);
        controller.onTap(0);
        assertEquals("we met at the par", editor.text());
        controller.onBackspace();  // (back to "pa": the words shown for it are offered again)
        editor.report(controller);
        settle();
        String word = editor.lastStrip().get(0);
        assertTrue(word.startsWith("pa"), word);
        controller.onTap(0);
        assertEquals("we met at the " + word + " ", editor.text());
        // a reset (cursor jump) while the old strip shows: the slot index must not land on the new strip
        settle();
        editor.set(editor.text(), 3);
        editor.report(controller);
        controller.onTap(1);
        assertEquals("we met at the " + word + " ", editor.text());
    }

    /** {inputType, imeOptions} of every field kind InputTypes treats as private. */
    static final int[][] PRIVATE_FIELDS = {
            {TEXT | InputTypes.TYPE_TEXT_VARIATION_PASSWORD, 0},
            {TEXT | InputTypes.TYPE_TEXT_VARIATION_VISIBLE_PASSWORD, 0},
            {TEXT | InputTypes.TYPE_TEXT_VARIATION_WEB_PASSWORD, 0},
            {InputTypes.TYPE_CLASS_NUMBER | InputTypes.TYPE_NUMBER_VARIATION_PASSWORD, 0},
            {TEXT | InputTypes.TYPE_TEXT_FLAG_NO_SUGGESTIONS, 0},
            {TEXT, InputTypes.IME_FLAG_NO_PERSONALIZED_LEARNING},
    };

    @Test
    void privateFieldsShowNoStripStepNothingAndLearnNothing() throws Exception {
        int[][] fields = PRIVATE_FIELDS;
        PersonalCache cache = new PersonalCache(bundle.vocabulary.size(), 0.3);
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, cache);
        controller.onStartInput(TEXT, 0);  // an ordinary field first: the model is loaded, the cache learns
        type(controller, editor, "we met at the park . ");
        settle();
        assertTrue(cache.size() > 0 && models.steps.get() > 0);
        for (int[] field : fields) {
            assertTrue(InputTypes.isPrivate(field[0], field[1]));
            controller.onFinishInput();
            String learned = cache.toJson().toString();
            int steps = models.steps.get(), strips = editor.strips.size();
            editor.set("my secret is hunter", 19);
            controller.onStartInput(field[0], field[1]);
            type(controller, editor, "2 see you at the sta\b");
            controller.onTap(0);
            settle();
            assertEquals("my secret is hunter2 see you at the st", editor.text());
            assertEquals(steps, models.steps.get(), "a private field stepped the model");
            assertEquals(learned, cache.toJson().toString(), "a private field taught the cache");
            for (List<String> strip : editor.strips.subList(strips, editor.strips.size())) {
                assertTrue(strip.isEmpty(), "a private field showed " + strip);
            }
            assertFalse(editor.shift, "no automatic capitals in a password");
        }
        assertFalse(InputTypes.isPrivate(TEXT, 0));
        assertFalse(InputTypes.isPrivate(InputTypes.TYPE_CLASS_NUMBER, 0));
        // a password field first thing: the bundle is not even loaded
        Models fresh = new Models();
        RecordingEditor other = new RecordingEditor("");
        KeyboardController first = new KeyboardController(other, BundleSource.of(BundleFiles.directory(dir)), fresh, null,
                worker, ui);
        first.onStartInput(TEXT | InputTypes.TYPE_TEXT_VARIATION_PASSWORD, 0);
        type(first, other, "hunter2");
        settle();
        assertEquals(0, fresh.steps.get());
        assertTrue(fresh.opened.isEmpty());
    }

    @Test
    void composingTextLeftByTheEditorIsKept() throws Exception {
        RecordingEditor editor = new RecordingEditor("hello wor");
        editor.composingStart = 6;  // another keyboard left "wor" composing
        editor.composingEnd = 9;
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        editor.report(controller);
        settle();
        controller.onKey("l");
        assertEquals("hello worl", editor.text(), "commitText replaced the composing text");
        assertTrue(editor.calls.contains("finishComposing"));
        editor.report(controller);
        controller.onFinishInput();
        editor.set("see you at the st", 17);
        editor.composingStart = 15;  // composing "st", then a tap
        editor.composingEnd = 17;
        controller.onStartInput(TEXT, 0);
        editor.report(controller);
        settle();
        String word = editor.lastStrip().get(0);
        assertTrue(word.startsWith("st"), word);
        controller.onTap(0);
        assertEquals("see you at the " + word + " ", editor.text());
    }

    @Test
    void backspaceInAnEmptyFieldSendsADeleteKey() {
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        controller.onBackspace();
        assertEquals(1, editor.deleteKeys);
        type(controller, editor, "ok\b");
        assertEquals("O", editor.text());
        assertEquals(1, editor.deleteKeys);
        type(controller, editor, "\b\b");
        assertEquals("", editor.text());
        assertEquals(2, editor.deleteKeys);
        editor.set("x👍🏽", 5);  // a backspace deletes one code point (a surrogate pair), never half
        editor.report(controller);
        controller.onBackspace();
        assertEquals("x👍", editor.text());
        // a selection: deleted, no key sent
        editor.set("see you", 7);
        editor.selStart = 4;
        editor.report(controller);
        controller.onBackspace();
        assertEquals("see ", editor.text());
        assertEquals(2, editor.deleteKeys);
    }

    @Test
    void shiftAtFieldAndSentenceStart() {
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        assertTrue(editor.shift, "an empty field starts a sentence");
        type(controller, editor, "hi");
        assertEquals("Hi", editor.text());
        assertFalse(editor.shift);
        type(controller, editor, ". ");
        assertTrue(editor.shift, "after a sentence end");
        type(controller, editor, "see you");
        assertEquals("Hi. See you", editor.text());
        controller.onShiftKey();
        type(controller, editor, "x");
        assertEquals("Hi. See youX", editor.text());
        assertFalse(editor.shift, "one capital, then off");
        controller.onFinishInput();
        editor.set("", 0);
        controller.onStartInput(TEXT, 0);
        assertTrue(editor.shift, "re-armed in the next field");
        controller.onFinishInput();
        editor.set("half a sentence ", 16);
        controller.onStartInput(TEXT, 0);
        assertFalse(editor.shift, "mid-sentence");
        type(controller, editor, "\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b");
        assertTrue(editor.shift, "backspaced to the field's start");
    }

    @Test
    void finishingInputClearsTheStripAndDropsLateOnes() {
        RecordingEditor editor = new RecordingEditor("see you at the ");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        assertFalse(editor.lastStrip().isEmpty());
        type(controller, editor, "s");
        controller.onFinishInput();  // the strip for "s" is still being computed
        settle();
        assertTrue(editor.lastStrip().isEmpty(), "the previous field's strip stayed: " + editor.strips);
        controller.onTap(0);
        assertEquals("see you at the s", editor.text());
    }

    @Test
    void aBundleSwappedOnDiskIsLoadedAtTheNextStartOfInput() throws Exception {
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);  // same bundle: not reloaded
        settle();
        assertEquals(1, models.opened.size());
        byte[] original = Bytes.readAll(new FileInputStream(new File(dir, "manifest.json")));
        JSONObject manifest = new JSONObject(new String(original, Bytes.UTF8));
        write("manifest.json", manifest.put("pushed", "v2").toString(2).getBytes(Bytes.UTF8));  // adb push of a new bundle
        type(controller, editor, "see ");
        settle();
        assertEquals(1, models.opened.size(), "reloaded mid-typing");
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);
        settle();
        assertEquals(2, models.opened.size());
        assertEquals("v2", models.bundles.get(1).manifest.optString("pushed"));
        assertTrue(models.opened.get(0).closed, "the old model was not released");
        assertNull(editor.messages.get(editor.messages.size() - 1));
        assertEquals(expectedStrip("See "), editor.lastStrip());
    }

    @Test
    void reloadModelReopensTheSessionAtTheNextStartOfInput() throws Exception {
        // the nightly job wrote a new adapter (docs/engine.md §18.5): same bundle, a model to open again
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        type(controller, editor, "see ");
        controller.reloadModel();
        type(controller, editor, "you ");
        settle();
        assertEquals(1, models.opened.size(), "reloaded mid-typing");
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);
        settle();
        assertEquals(2, models.opened.size());
        assertTrue(models.opened.get(0).closed, "the old model was not released");
        assertEquals(expectedStrip("See you "), editor.lastStrip());
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);  // once only
        settle();
        assertEquals(2, models.opened.size());
    }

    @Test
    void aBadBundleOrAFailingModelLeavesTypingWorkingAndRetriesAtTheNextField() throws Exception {
        PersonalCache cache = new PersonalCache(bundle.vocabulary.size(), 0.3);
        File manifest = new File(dir, "manifest.json");
        byte[] good = Bytes.readAll(new FileInputStream(manifest));
        write("manifest.json", "{not json".getBytes(Bytes.UTF8));
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, cache);
        controller.onStartInput(TEXT, 0);
        settle();
        String message = editor.messages.get(editor.messages.size() - 1);
        assertNotNull(message);
        assertTrue(message.startsWith("No suggestions: ") && message.contains("manifest.json") && !message.contains("\n"), message);
        type(controller, editor, "we met ");
        settle();
        assertEquals("We met ", editor.text());
        write("manifest.json", good);  // fixed: the next field tries again
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);
        settle();
        assertNull(editor.messages.get(editor.messages.size() - 1));
        assertFalse(editor.lastStrip().isEmpty());
        type(controller, editor, "at the park . ");
        settle();
        int learned = cache.size();
        assertTrue(learned > 0);
        models.throwAt = models.steps.get() + 1;  // the next model opened fails at once...
        models.opened.get(models.opened.size() - 1).throwAt = models.steps.get() + 1;  // ...and so does this one
        type(controller, editor, "see you ");
        settle();
        message = editor.messages.get(editor.messages.size() - 1);
        assertTrue(message != null && message.contains("the model failed"), String.valueOf(message));
        type(controller, editor, "soon");
        assertTrue(editor.text().endsWith("See you soon"), editor.text());
        assertTrue(cache.size() >= learned, "what the user taught was lost");
        models.throwAt = -1;
        controller.onFinishInput();
        controller.onStartInput(TEXT, 0);
        settle();
        assertNull(editor.messages.get(editor.messages.size() - 1));
        assertEquals(expectedStrip(editor.text()).size(), editor.lastStrip().size());
    }

    @Test
    void primingReadsAtMostTheEnginesWindow() {
        StringBuilder field = new StringBuilder();
        while (field.length() < 100_000) field.append("see you at the station tomorrow . ");
        RecordingEditor editor = new RecordingEditor(field.toString());
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 0);
        settle();
        assertEquals(KeyboardController.READ_CHARS, controller.text().length());
        assertTrue(models.steps.get() <= KeyboardEngine.CONTEXT_CHARS / 2, "primed " + models.steps.get() + " ids");
        int steps = models.steps.get();
        type(controller, editor, "we");  // typed on past the read: in step, no re-prime
        settle();
        assertTrue(models.steps.get() - steps <= 2, "a keystroke stepped " + (models.steps.get() - steps));
        assertTrue(controller.text().endsWith("tomorrow . We"), controller.text().substring(controller.text().length() - 20));
    }

    @Test
    void enterPerformsTheEditorsActionOrTypesANewLine() {
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null);
        controller.onStartInput(TEXT, 3);  // IME_ACTION_SEARCH
        controller.onEnter();
        assertEquals(Arrays.asList("action 3"), editor.calls.subList(editor.calls.size() - 1, editor.calls.size()));
        controller.onFinishInput();
        controller.onStartInput(TEXT, 3 | InputTypes.IME_FLAG_NO_ENTER_ACTION);
        type(controller, editor, "ok");
        controller.onEnter();
        assertEquals("Ok\n", editor.text());
        assertTrue(editor.shift, "a new line starts a sentence");
    }

    // -- the user's words (docs/engine.md §17) --------------------------------------------

    private static final String NAME = "Kasia";  // outside the toy vocabulary, and no vocabulary word starts with "k"

    @Test
    void aNameTypedTwiceInANormalFieldIsOfferedFromItsFirstLettersTheThirdTime() {
        assertEquals(Vocabulary.UNK_ID, bundle.vocabulary.id("kasia"));
        UserWords words = new UserWords();
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null, words);
        field(controller, editor, TEXT, 0, "see you " + NAME + " . see you Ka");
        assertEquals("See you Kasia . See you Ka", editor.text());
        assertEquals(Collections.emptyList(), editor.lastStrip(), "learned after one commit");
        assertEquals("[]", words.words().toString());
        field(controller, editor, TEXT, 0, "i will call " + NAME + " tomorrow . ");
        assertEquals("[Kasia 2]", words.words().toString());
        field(controller, editor, TEXT, 0, "see you k");
        assertEquals(Collections.singletonList(NAME), editor.lastStrip(), "offered from its first letter, in its own case");
        controller.onTap(0);
        editor.report(controller);
        assertEquals("See you Kasia ", editor.text());
        settle();
        assertEquals("[Kasia 3]", words.words().toString(), "the tapped word is committed too");
        // backspacing into the word takes its commit back
        type(controller, editor, "\b\b");
        settle();
        assertEquals("[Kasia 2]", words.words().toString());
    }

    @Test
    void aNameTypedInAPasswordOrNoSuggestionsFieldIsNeverLearned() {
        int[][] fields = java.util.Arrays.copyOf(PRIVATE_FIELDS, PRIVATE_FIELDS.length + 1);
        fields[PRIVATE_FIELDS.length] = new int[] {InputTypes.TYPE_CLASS_NUMBER, 0};  // not text: no strip either
        UserWords words = new UserWords();
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null, words);
        field(controller, editor, TEXT, 0, "see you ");  // an ordinary field first: the engine is there, with the words
        assertTrue(models.steps.get() > 0);
        for (int[] field : fields) {
            assertFalse(InputTypes.suggests(field[0], field[1]));
            int steps = models.steps.get();
            field(controller, editor, field[0], field[1], NAME + " " + NAME + " . ");
            field(controller, editor, field[0], field[1], "call " + NAME + " tomorrow . " + NAME + " ");
            // a field that opens with the name, a cursor jump there, and typing on after it
            controller.onFinishInput();
            editor.set(NAME + " ", 6);
            controller.onStartInput(field[0], field[1]);
            editor.set(NAME + " " + NAME + " ", 12);
            editor.report(controller);
            type(controller, editor, NAME + " ");
            settle();
            assertEquals(NAME + " " + NAME + " " + NAME + " ", editor.text());
            assertEquals(steps, models.steps.get(), "a private field stepped the model");
            assertEquals("[]", words.words().toString());
            assertFalse(words.toJsonText().contains("asia"), "a private field counted a commit: " + words.toJsonText());
        }
        // back in an ordinary field: nothing offered; the name typed there once counts (the test sees a commit)
        field(controller, editor, TEXT, 0, "see you Ka");
        assertEquals(Collections.emptyList(), editor.lastStrip());
        type(controller, editor, "sia ");
        settle();
        assertTrue(words.toJsonText().contains("[[\"Kasia\", 1]]"), words.toJsonText());
        assertEquals("[]", words.words().toString());
    }

    @Test
    void theUserWordsSurviveABundleReloadABadBundleAndAFailingModel() throws Exception {
        UserWords words = new UserWords();
        RecordingEditor editor = new RecordingEditor("");
        KeyboardController controller = controller(editor, null, words);
        field(controller, editor, TEXT, 0, "see you " + NAME + " . ");
        field(controller, editor, TEXT, 0, "call " + NAME + " . ");
        assertEquals("[Kasia 2]", words.words().toString());
        byte[] good = Bytes.readAll(new FileInputStream(new File(dir, "manifest.json")));
        JSONObject manifest = new JSONObject(new String(good, Bytes.UTF8));
        write("manifest.json", manifest.put("pushed", "v2").toString(2).getBytes(Bytes.UTF8));  // adb push of a new bundle
        field(controller, editor, TEXT, 0, "see you Ka");
        assertEquals(2, models.opened.size());
        assertEquals("v2", models.bundles.get(1).manifest.optString("pushed"));
        assertEquals(Collections.singletonList(NAME), editor.lastStrip(), "the reloaded engine lost the user's words");
        // a bad bundle: no suggestions, and the words kept
        write("manifest.json", "{not json".getBytes(Bytes.UTF8));
        field(controller, editor, TEXT, 0, "see you " + NAME + " . ");
        assertNotNull(editor.messages.get(editor.messages.size() - 1));
        assertEquals("[Kasia 2]", words.words().toString());
        // fixed, then the model throws while the name is typed
        write("manifest.json", good);
        field(controller, editor, TEXT, 0, "see you ");
        assertEquals(3, models.opened.size());
        models.opened.get(2).throwAt = models.steps.get() + 1;
        type(controller, editor, NAME + " . ");
        settle();
        String message = editor.messages.get(editor.messages.size() - 1);
        assertTrue(message != null && message.contains("the model failed"), String.valueOf(message));
        field(controller, editor, TEXT, 0, "see you Ka");
        assertEquals(4, models.opened.size());
        assertNull(editor.messages.get(editor.messages.size() - 1));
        assertEquals(Collections.singletonList(NAME), editor.lastStrip());
        assertTrue(words.learned("kasia"));
    }

    @Test
    void theAppListsEditsAndSavesTheWordsOnTheWorker() throws Exception {
        ExecutorService background = Executors.newSingleThreadExecutor();
        try {
            Thread workerThread = background.submit(Thread::currentThread).get(20, TimeUnit.SECONDS);
            UserWords words = new UserWords();
            RecordingEditor editor = new RecordingEditor("");
            KeyboardController controller = new KeyboardController(editor, BundleSource.of(BundleFiles.directory(dir)),
                    models, null, words, background, ui);
            for (String keys : new String[] {"see you " + NAME + " . ", "call " + NAME + " . "}) {
                editor.set("", 0);
                controller.onStartInput(TEXT, 0);
                type(controller, editor, keys);
                idle(background);
                controller.onFinishInput();
            }
            File path = UserWords.wordsPath(new File(dir, "cache.json"));
            List<String> said = Collections.synchronizedList(new ArrayList<String>());
            controller.saveUserWords(path, said::add);
            idle(background);
            assertEquals("[Kasia 2]", UserWords.load(path).words().toString());
            assertTrue(path.delete());
            controller.saveUserWords(path, said::add);  // as saved: not written again
            idle(background);
            assertFalse(path.exists());
            // listed, removed and added back on the worker; the strip follows at once
            editor.set("", 0);
            controller.onStartInput(TEXT, 0);
            type(controller, editor, "see you ");
            idle(background);
            type(controller, editor, "k");  // one key: a strip the worker showed for "K" would be passed over at "Ka" (§6)
            idle(background);
            assertEquals(Collections.singletonList(NAME), editor.lastStrip());
            List<String> listed = Collections.synchronizedList(new ArrayList<String>());
            Set<Thread> ran = Collections.synchronizedSet(new HashSet<Thread>());
            controller.withUserWords(w -> {
                ran.add(Thread.currentThread());
                listed.add(w.words().toString());
                w.remove(NAME);
            });
            idle(background);
            assertEquals(Collections.singletonList("[Kasia 2]"), listed);
            assertEquals(Collections.emptyList(), editor.lastStrip(), "a removed word stayed on the strip");
            controller.withUserWords(w -> {
                ran.add(Thread.currentThread());
                w.add("Kasia");
            });
            idle(background);
            assertEquals(Collections.singletonList(NAME), editor.lastStrip());
            assertEquals(Collections.singleton(workerThread), ran);
            assertFalse(models.threads.contains(Thread.currentThread()), "a model call ran on the UI thread");
            assertEquals(Collections.singleton(Thread.currentThread()), new HashSet<>(editor.threads),
                    "an editor call ran off the UI thread");
            controller.saveUserWords(path, said::add);  // changed since: written
            idle(background);
            assertEquals(words.toJsonText(), new String(Bytes.readAll(new FileInputStream(path)), Bytes.UTF8));
            assertTrue(said.isEmpty(), said.toString());
            File nowhere = new File(new File(dir, "missing"), "cache.words.json");
            controller.saveUserWords(nowhere, said::add);
            idle(background);
            assertEquals(1, said.size());
            assertTrue(said.get(0).startsWith(nowhere + ": the learned words could not be saved"), said.get(0));
            // a controller without user words: the task gets none, nothing is saved
            KeyboardController none = new KeyboardController(new RecordingEditor(""),
                    BundleSource.of(BundleFiles.directory(dir)), models, null, background, ui);
            List<UserWords> given = Collections.synchronizedList(new ArrayList<UserWords>());
            none.withUserWords(given::add);
            File other = new File(dir, "other.words.json");
            none.saveUserWords(other, said::add);
            idle(background);
            assertEquals(Collections.singletonList((UserWords) null), given);
            assertFalse(other.exists());
            assertEquals(1, said.size());
        } finally {
            background.shutdownNow();
        }
    }

    /** Lets a real worker thread and then the UI queue catch up, until both are idle. */
    private void idle(ExecutorService background) throws Exception {
        do {
            background.submit(() -> { }).get(20, TimeUnit.SECONDS);
        } while (ui.runAll() > 0);
    }
}

package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nightly step of docs/engine.md §18.5 over {@link ToyTrainer} in the sizes of the adapter
 * fixture's bundle (tests/android/make_adapter_fixture.py, as AdapterTest reads it): the schedule
 * decides and nothing is touched when it says not yet; only a shipped adapter replaces the file,
 * whole; every other end keeps the previous file byte for byte; the trainer is always closed; the
 * loader at session start falls back to the base model with one line.
 */
class NightlyAdaptationTest {
    @TempDir
    File dir;

    private static final long HOUR = 3_600_000L;
    private static final long NOW = 1_700_000_000_000L;

    private File fixture;
    private BundleFiles files;
    private Bundle bundle;
    private File adapterFile;
    private byte[] previous;

    @BeforeEach
    void load() throws Exception {
        fixture = new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter");
        files = BundleFiles.directory(new File(fixture, "bundle"));
        bundle = Bundle.load(files);
        adapterFile = new File(dir, NightlyAdaptation.FILE);
        previous = read(new File(fixture, "adapter.kbad"));  // numpy's file for this bundle: the user's adapter so far
    }

    private static byte[] read(File file) throws IOException {
        return Bytes.readAll(new FileInputStream(file));
    }

    private static void write(File file, byte[] data) throws IOException {
        try (FileOutputStream out = new FileOutputStream(file)) {
            out.write(data);
        }
    }

    /** The names in {@code folder}, sorted: a temp file left behind shows here. */
    private static List<String> names(File folder) {
        String[] names = folder.list();
        List<String> out = new ArrayList<>(Arrays.asList(names == null ? new String[0] : names));
        Collections.sort(out);
        return out;
    }

    /** A user who keeps saying the same things (AdapterTrainingTest's): 120 messages, enough words and text to ship. */
    private static CommittedText user() {
        String[] said = {"see you at the station tomorrow .", "i think the train is late again !", "we met at the park tonight",
            "are you at the station ?", "don't be late for the train ."};
        Random random = new Random(3);
        CommittedText text = new CommittedText();
        for (int m = 0; m < 120; m++) text.add(said[random.nextInt(said.length)] + " " + said[random.nextInt(said.length)]);
        assertTrue(text.newWords() >= TrainingSchedule.MIN_NEW_WORDS, "the user has typed enough: " + text.newWords());
        return text;
    }

    /** A toy trainer in the bundle's sizes that counts its closes, and can throw or act at a given call. */
    static final class Counted extends ToyTrainer {
        int closed;
        int throwAt;  // 1-based call that throws (0: none)
        int actAt;  // 1-based call before which {@link #act} runs (0: none)
        Runnable act;

        Counted(Bundle bundle) {
            super(bundle.vocabularySize, bundle.adapterFeatureSize(), bundle.adapterRank(), bundle.adapterWindow(), bundle.stateSizes, 11);
        }

        @Override
        public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                            float learningRate, float l2) {
            if (calls + 1 == actAt) act.run();
            if (calls + 1 == throwAt) {
                calls++;
                throw new IllegalStateException("the interpreter went away");
            }
            return super.train(tokens, targets, mask, reset, state, adapter, learningRate, l2);
        }

        @Override
        public void close() {
            closed++;
        }
    }

    /** Opens {@link Counted} trainers and keeps them. */
    static final class Trainers implements NightlyAdaptation.TrainerFactory {
        final List<Counted> opened = new ArrayList<>();
        int throwAt, actAt;
        Runnable act;

        @Override
        public Trainer open(Bundle bundle) {
            Counted trainer = new Counted(bundle);
            trainer.throwAt = throwAt;
            trainer.actAt = actAt;
            trainer.act = act;
            opened.add(trainer);
            return trainer;
        }

        Counted only() {
            assertEquals(1, opened.size(), "trainers opened");
            return opened.get(0);
        }
    }

    @Test
    void notDueTouchesNothing() throws Exception {
        write(adapterFile, previous);
        CommittedText few = new CommittedText();
        few.add("see you at the station");
        BundleFiles nowhere = BundleFiles.directory(new File(dir, "no-bundle"));  // not even read when not due
        Object[][] cases = {  // committed text, keyboard open, charging, last run, decision, message
            {few, false, true, TrainingSchedule.NEVER, TrainingSchedule.Decision.TOO_FEW_WORDS,
                "not due: 5 words committed since the last run (at least 1000)"},
            {user(), true, true, TrainingSchedule.NEVER, TrainingSchedule.Decision.KEYBOARD_OPEN, "not due: a keyboard session is open"},
            {user(), false, false, TrainingSchedule.NEVER, TrainingSchedule.Decision.NOT_CHARGING, "not due: the phone is not charging"},
            {user(), false, true, NOW - 19 * HOUR - HOUR / 2, TrainingSchedule.Decision.TOO_SOON,
                "not due: the last run was 19.5 h ago (at least 20 h apart)"},
        };
        for (Object[] c : cases) {
            CommittedText committed = (CommittedText) c[0];
            long words = committed.newWords();
            Trainers trainers = new Trainers();
            NightlyAdaptation step = new NightlyAdaptation(adapterFile, trainers);
            NightlyAdaptation.Report report = step.run(nowhere, committed, (Boolean) c[1], (Boolean) c[2], NOW, (Long) c[3]);
            assertEquals(NightlyAdaptation.Status.NOT_DUE, report.status, report.toString());
            assertEquals(c[4], report.decision);
            assertEquals(c[5], report.message);
            assertFalse(report.ran());
            assertFalse(report.written());
            assertNull(report.outcome());
            assertEquals((long) (Long) c[3], report.lastRunMillis, "the last run stays as it was");
            assertEquals(words, committed.newWords(), "the word count stays");
            assertTrue(trainers.opened.isEmpty(), "no trainer opened");
            assertArrayEquals(previous, read(adapterFile));
            assertEquals(Collections.singletonList(NightlyAdaptation.FILE), names(dir));
        }
    }

    @Test
    void aDueRunWritesAnAdapterThatLoadsForItsBundle() throws Exception {
        write(adapterFile, previous);
        CommittedText committed = user();
        Trainers trainers = new Trainers();
        trainers.actAt = 5;
        trainers.act = () -> committed.add("one more message typed");  // during the run: counts towards the next one
        NightlyAdaptation step = new NightlyAdaptation(adapterFile, trainers);
        NightlyAdaptation.Report report = step.run(files, committed, false, true, NOW, NOW - 21 * HOUR);
        assertEquals(NightlyAdaptation.Status.WRITTEN, report.status, report.toString());
        assertEquals(TrainingSchedule.Decision.TRAIN, report.decision);
        assertEquals(AdapterTraining.Outcome.SHIPPED, report.outcome());
        assertTrue(report.ran() && report.written());
        assertEquals(NOW, report.lastRunMillis);
        assertEquals(120, report.result.messages, "the messages there were when the run started");
        assertEquals(4, committed.newWords(), "words committed during the run still count; the others do not");
        assertEquals(121, committed.messages().size(), "the messages are kept for the next run");
        assertTrue(report.message.startsWith("adapted: held-out loss ") && report.message.endsWith("; wrote " + adapterFile),
                report.message);
        assertFalse(report.message.contains("\n"));
        assertEquals(1, trainers.only().closed, "the trainer is closed");

        assertFalse(Arrays.equals(previous, read(adapterFile)), "the previous adapter was replaced");
        assertEquals(Collections.singletonList(NightlyAdaptation.FILE), names(dir), "no temp file left");
        Adapter loaded = Adapter.load(adapterFile, bundle);
        assertEquals(report.result.bestEpoch, loaded.training.getInt("best_epoch"));
        for (int i = 0; i < 3; i++) assertArrayEquals(report.result.adapter.arrays()[i], loaded.arrays()[i], Adapter.ARRAYS[i]);
        // and the session-start loader takes it, saying nothing
        List<String> warnings = new ArrayList<>();
        Adapter session = NightlyAdaptation.load(adapterFile, bundle, warnings::add);
        assertNotNull(session);
        assertTrue(warnings.isEmpty(), warnings.toString());
        assertArrayEquals(loaded.up, session.up);
    }

    @Test
    void withoutABetterAdapterThePreviousFileStays() throws Exception {
        // many words counted, little text kept (the words of messages the buffer has dropped still count)
        JSONObject little = new JSONObject().put("format_version", 1).put("new_words", 1200)
                .put("messages", new JSONArray(Arrays.asList("see you at the station", "i think the train is late")));
        Object[][] cases = {  // little text?, options, outcome
            {true, AdapterTraining.Options.DEFAULT, AdapterTraining.Outcome.TOO_SHORT},
            // learning rate 0: the adapter stays zero, epoch 1 scores exactly the base: not below it
            {false, AdapterTraining.Options.DEFAULT.withLearningRate(0f), AdapterTraining.Outcome.NOT_BETTER},
            {false, AdapterTraining.Options.DEFAULT.withLearningRate(3e38f), AdapterTraining.Outcome.DIVERGED},
        };
        for (Object[] c : cases) {
            for (boolean hadOne : new boolean[] {true, false}) {
                if (hadOne) write(adapterFile, previous);
                else assertTrue(adapterFile.delete());
                CommittedText committed = (Boolean) c[0] ? CommittedText.fromJson(little, "committed.json") : user();
                Trainers trainers = new Trainers();
                NightlyAdaptation.Report report = new NightlyAdaptation(adapterFile, trainers, (AdapterTraining.Options) c[1])
                        .run(files, committed, false, true, NOW, TrainingSchedule.NEVER);
                assertEquals(NightlyAdaptation.Status.KEPT, report.status, report.toString());
                assertEquals(c[2], report.outcome());
                assertEquals(report.result.message, report.message);
                assertTrue(report.ran(), "the run counts");
                assertFalse(report.written());
                assertEquals(NOW, report.lastRunMillis);
                assertEquals(0, committed.newWords());
                assertEquals(1, trainers.only().closed);
                if (hadOne) {
                    assertArrayEquals(previous, read(adapterFile), c[2] + ": the previous adapter, byte for byte");
                    assertEquals(Collections.singletonList(NightlyAdaptation.FILE), names(dir));
                } else {
                    assertEquals(Collections.emptyList(), names(dir), c[2] + ": no adapter is written");
                }
            }
        }
    }

    @Test
    void aTrainerThatThrowsKeepsThePreviousFileAndIsClosed() throws Exception {
        write(adapterFile, previous);
        CommittedText committed = user();
        Trainers trainers = new Trainers();
        trainers.throwAt = 7;
        NightlyAdaptation.Report report = new NightlyAdaptation(adapterFile, trainers)
                .run(files, committed, false, true, NOW, TrainingSchedule.NEVER);
        assertEquals(NightlyAdaptation.Status.FAILED, report.status, report.toString());
        assertEquals("training failed: java.lang.IllegalStateException: the interpreter went away; the previous adapter stays",
                report.message);
        assertNull(report.outcome());
        assertTrue(report.ran(), "a run that fails counts (a broken model is not retried at every wake)");
        assertEquals(NOW, report.lastRunMillis);
        assertEquals(0, committed.newWords());
        assertEquals(7, trainers.only().calls, "no call after the one that threw");
        assertEquals(1, trainers.only().closed);
        assertArrayEquals(previous, read(adapterFile));
        assertEquals(Collections.singletonList(NightlyAdaptation.FILE), names(dir));
    }

    @Test
    void aStepThatCannotStartCountsForNothing() throws Exception {
        write(adapterFile, previous);
        CommittedText committed = user();
        long words = committed.newWords();
        // no bundle where the files say
        Trainers trainers = new Trainers();
        NightlyAdaptation.Report report = new NightlyAdaptation(adapterFile, trainers)
                .run(BundleFiles.directory(new File(dir, "no-bundle")), committed, false, true, NOW, TrainingSchedule.NEVER);
        assertEquals(NightlyAdaptation.Status.CANNOT_START, report.status, report.toString());
        assertTrue(report.message.startsWith("cannot adapt: ") && report.message.contains("manifest.json"), report.message);
        assertTrue(trainers.opened.isEmpty());
        assertFalse(report.ran());
        assertEquals(TrainingSchedule.NEVER, report.lastRunMillis);
        // a train signature that does not open (LiteRtTrainer's BundleException)
        NightlyAdaptation.TrainerFactory broken = b -> {
            throw new BundleException("model.tflite: no signature \"train\"");
        };
        report = new NightlyAdaptation(adapterFile, broken).run(files, committed, false, true, NOW, TrainingSchedule.NEVER);
        assertEquals(NightlyAdaptation.Status.CANNOT_START, report.status, report.toString());
        assertEquals("cannot open the train signature: model.tflite: no signature \"train\"", report.message);
        assertFalse(report.ran());
        assertEquals(TrainingSchedule.NEVER, report.lastRunMillis);
        assertEquals(words, committed.newWords(), "the words still count");
        assertArrayEquals(previous, read(adapterFile));
    }

    @Test
    void stopEndsTheRunWithoutCountingIt() throws Exception {
        write(adapterFile, previous);
        CommittedText committed = user();
        long words = committed.newWords();
        Trainers trainers = new Trainers();
        NightlyAdaptation step = new NightlyAdaptation(adapterFile, trainers);
        trainers.actAt = 10;
        trainers.act = step::stop;  // JobService.onStopJob, from another thread in the app
        long lastRun = NOW - 30 * HOUR;
        NightlyAdaptation.Report report = step.run(files, committed, false, true, NOW, lastRun);
        assertEquals(NightlyAdaptation.Status.STOPPED, report.status, report.toString());
        assertEquals("stopped before the end; the previous adapter stays", report.message);
        assertFalse(report.ran());
        assertEquals(lastRun, report.lastRunMillis);
        assertEquals(words, committed.newWords(), "the words still count: it runs again at the next chance");
        assertEquals(10, trainers.only().calls, "no trainer call after the stop");
        assertEquals(1, trainers.only().closed);
        assertArrayEquals(previous, read(adapterFile));
        assertEquals(Collections.singletonList(NightlyAdaptation.FILE), names(dir));
        // a stopped step does not start again
        report = step.run(files, committed, false, true, NOW, lastRun);
        assertEquals(NightlyAdaptation.Status.STOPPED, report.status);
        assertEquals("stopped before it started", report.message);
        assertEquals(1, trainers.opened.size());
    }

    @Test
    void aFolderThatCannotTakeTheFileFailsClearly() throws Exception {
        File plain = new File(dir, "plain");
        write(plain, new byte[] {1, 2, 3});
        File taken = new File(dir, "taken.kbad");  // a folder where the file should be: the rename fails
        assertTrue(taken.mkdir());
        write(new File(taken, "inside"), previous);
        File[] targets = {new File(new File(dir, "missing"), NightlyAdaptation.FILE), new File(plain, NightlyAdaptation.FILE), taken};
        for (File target : targets) {
            CommittedText committed = user();
            Trainers trainers = new Trainers();
            NightlyAdaptation.Report report = new NightlyAdaptation(target, trainers)
                    .run(files, committed, false, true, NOW, TrainingSchedule.NEVER);
            assertEquals(NightlyAdaptation.Status.FAILED, report.status, report.toString());
            assertEquals(AdapterTraining.Outcome.SHIPPED, report.outcome(), "trained, but not written");
            assertFalse(report.written());
            assertTrue(report.message.startsWith(report.result.message + "; but " + target + " could not be written ("), report.message);
            assertTrue(report.message.endsWith("); the previous adapter stays"), report.message);
            assertFalse(report.message.contains("\n"));
            assertTrue(report.ran(), "the run counts");
            assertEquals(0, committed.newWords());
            assertEquals(1, trainers.only().closed);
        }
        assertEquals(Arrays.asList("plain", "taken.kbad"), names(dir), "no folder made, no temp file left");
        assertArrayEquals(new byte[] {1, 2, 3}, read(plain));
        assertEquals(Collections.singletonList("inside"), names(taken));
        assertArrayEquals(previous, read(new File(taken, "inside")));
    }

    /** The fixture's file with its header edited (the payload as it is). */
    private byte[] withHeader(String key, Object value) throws Exception {
        int length = ByteBuffer.wrap(previous, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        JSONObject header = new JSONObject(new String(previous, 12, length, Bytes.UTF8)).put(key, value);
        byte[] head = header.toString().getBytes(Bytes.UTF8);
        byte[] payload = Arrays.copyOfRange(previous, 12 + length, previous.length);
        return ByteBuffer.allocate(12 + head.length + payload.length).order(ByteOrder.LITTLE_ENDIAN)
                .put("KBLMADAP".getBytes(Bytes.UTF8)).putInt(head.length).put(head).put(payload).array();
    }

    @Test
    void theLoaderFallsBackToTheBaseModelWithOneLine() throws Exception {
        List<String> warnings = new ArrayList<>();
        assertNull(NightlyAdaptation.load(adapterFile, bundle, warnings::add), "no file: the base model");
        assertTrue(warnings.isEmpty(), "no file is no fault: " + warnings);
        write(adapterFile, previous);
        Adapter good = NightlyAdaptation.load(adapterFile, bundle, warnings::add);
        assertNotNull(good);
        assertTrue(warnings.isEmpty(), warnings.toString());
        assertArrayEquals(Adapter.load(adapterFile, bundle).bias, good.bias);

        Adapter zeros = Adapter.zeros(bundle);
        File other = new File(dir, "other.kbad");
        new Adapter("0".repeat(64), zeros.featureSize, zeros.rank, zeros.vocabularySize, zeros.bias, zeros.down, zeros.up, null)
                .save(other);
        Object[][] cases = {  // bytes, what the one line names
            {Arrays.copyOf(previous, previous.length - 5), "field payload: "},
            {"not an adapter at all".getBytes(Bytes.UTF8), "field magic: "},
            {withHeader("format_version", 2), "field format_version: 2, but this keyboard reads adapter format 1"},
            {read(other), "field bundle_model_sha256: made for another model"},
        };
        for (Object[] c : cases) {
            write(adapterFile, (byte[]) c[0]);
            warnings.clear();
            assertNull(NightlyAdaptation.load(adapterFile, bundle, warnings::add), (String) c[1]);
            assertEquals(1, warnings.size(), warnings.toString());
            String line = warnings.get(0);
            assertTrue(line.startsWith(adapterFile.getPath() + ": " + c[1]) && line.endsWith("; the keyboard runs on the base model"),
                    line);
            assertFalse(line.contains("\n"), line);
            assertNull(NightlyAdaptation.load(adapterFile, bundle, null), "no warning sink: still null, no crash");
        }
    }

    // -- the forgetting guard (§18.3): the bundle's general sample ---------------------------------

    /** The fixture's bundle with a general sample of its own (make_adapter_fixture.py's bundle-general). */
    private File generalBundle() {
        return new File(fixture, "bundle-general");
    }

    @Test
    void theBundlesGeneralSampleGuardsTheRun() throws Exception {
        write(adapterFile, previous);
        Bundle general = Bundle.load(BundleFiles.directory(generalBundle()));
        assertEquals(10, general.adapterGeneralMessages().size());
        Trainers trainers = new Trainers();
        NightlyAdaptation.Report report = new NightlyAdaptation(adapterFile, trainers)
                .run(BundleFiles.directory(generalBundle()), user(), false, true, NOW, TrainingSchedule.NEVER);
        assertEquals(NightlyAdaptation.Status.WRITTEN, report.status, report.toString());
        AdapterTraining.Result result = report.result;
        // the fixture's sample is partly outside the vocabulary: the toy user's adapter forgets too much
        // of it at full strength, and ships blended
        assertNotNull(result.guard, result.message);
        assertTrue(result.blend > 0 && result.blend < 1, result.message);
        assertTrue(report.message.contains("; forgetting guard: its general loss rose "), report.message);
        // the step fed the loop the bundle's general messages, encoded as the user's are
        Tokenizer tokenizer = Tokenizer.standard();
        AdapterTraining.Result direct = AdapterTraining.forBundle(general, AdapterTraining.Options.DEFAULT).run(new Counted(general),
                AdapterTraining.encode(user().messages(), general.vocabulary, tokenizer),
                AdapterTraining.encode(general.adapterGeneralMessages(), general.vocabulary, tokenizer));
        assertEquals(direct.figures().toString(), result.figures().toString());
        assertEquals(direct.baseGeneralLoss, result.baseGeneralLoss);
        // the file written is the blend, and its header records the guard's figures
        Adapter loaded = Adapter.load(adapterFile, general);
        for (int i = 0; i < 3; i++) assertArrayEquals(result.adapter.arrays()[i], loaded.arrays()[i], Adapter.ARRAYS[i]);
        JSONObject guard = loaded.training.getJSONObject("guard");
        assertEquals(result.blend, guard.getDouble("blend"));
        assertEquals(result.baseGeneralLoss, guard.getDouble("base_general_loss"));
        assertEquals(result.generalLoss, guard.getDouble("general_loss"));
        assertEquals(AdapterTraining.MAX_FORGETTING, guard.getDouble("limit"));
        assertTrue(guard.getDouble("rise") <= AdapterTraining.MAX_FORGETTING, guard.toString());
        // the same step on the bundle without a sample (the fixture's): no guard
        NightlyAdaptation.Report plain = new NightlyAdaptation(adapterFile, new Trainers())
                .run(files, user(), false, true, NOW, TrainingSchedule.NEVER);
        assertEquals(NightlyAdaptation.Status.WRITTEN, plain.status, plain.toString());
        assertNull(plain.result.guard);
        assertTrue(Double.isNaN(plain.result.baseGeneralLoss));
        assertFalse(Adapter.load(adapterFile, bundle).training.has("guard"));
    }

    @Test
    void anAdapterThatForgotTooMuchKeepsThePreviousFile() throws Exception {
        // a general sample all outside the vocabulary, and no rise allowed: no blend is within the limit
        File copy = new File(dir, "bundle");
        Fixtures.copyBundle(generalBundle(), copy);
        byte[] text = "quokka wombat zebu\nparliament adjourned noon\nriver flooded valley\naunt bakes bread\n".getBytes(Bytes.UTF8);
        write(new File(copy, Bundle.GENERAL_FILE), text);
        JSONObject manifest = Fixtures.json(new File(copy, "manifest.json"));
        manifest.getJSONObject("files").getJSONObject(Bundle.GENERAL_FILE).put("sha256", Bytes.sha256(text)).put("bytes", text.length);
        manifest.getJSONObject("adapter").getJSONObject("general").put("messages", 4);
        write(new File(copy, "manifest.json"), manifest.toString(2).getBytes(Bytes.UTF8));
        for (boolean hadOne : new boolean[] {true, false}) {
            if (hadOne) write(adapterFile, previous);
            else assertTrue(adapterFile.delete());
            CommittedText committed = user();
            Trainers trainers = new Trainers();
            NightlyAdaptation.Report report = new NightlyAdaptation(adapterFile, trainers,
                    AdapterTraining.Options.DEFAULT.withMaxForgetting(0)).run(BundleFiles.directory(copy), committed, false, true, NOW,
                    TrainingSchedule.NEVER);
            assertEquals(NightlyAdaptation.Status.KEPT, report.status, report.toString());
            assertEquals(AdapterTraining.Outcome.FORGOT, report.outcome());
            assertTrue(report.message.startsWith("it forgot too much general text (its general loss rose ")
                    && report.message.endsWith(", and still more than 0.0% at 0.03125 of it); the previous adapter stays"), report.message);
            assertEquals(report.result.message, report.message);
            assertNull(report.result.adapter);
            assertTrue(report.ran(), "the run counts");
            assertFalse(report.written());
            assertEquals(NOW, report.lastRunMillis);
            assertEquals(0, committed.newWords());
            assertEquals(1, trainers.only().closed);
            if (hadOne) assertArrayEquals(previous, read(adapterFile), "the previous adapter, byte for byte");
            else assertFalse(adapterFile.exists(), "no adapter is written");
            assertEquals(hadOne ? Arrays.asList(NightlyAdaptation.FILE, "bundle") : Collections.singletonList("bundle"), names(dir));
        }
    }
}

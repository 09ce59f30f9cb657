package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The Python engine's golden traces (``kblm trace`` / keyboard_lm/phone/traces.py) replayed through
 * the Java engine, keystroke by keystroke: same text, prefix, kept and fed ids, model steps
 * (ids and the states they start from, see ReplayModel) and strip; the personal cache's pairs
 * at the end. The model is answered from the recorded outputs of the real exported model.
 * Each trace replays under both sentence contexts: the Python engine's ids and strips do not
 * depend on it (the recorded outputs stand for the model), only which states it steps from.
 * tests/android adds to a trace: "prime" (the field opened with text: reset(text, learn)) and
 * "cache_after" (the cache when the trace ended). A "PRIVATE" key opens a new, empty private
 * field (reset with privateField): no model steps, an empty strip, nothing learned until RESET.
 * Each trace's header ("engine") says the strip size it was recorded with; the replay loads
 * the bundle with that engine.strip_size in its manifest and builds the engine with the
 * bundle's strip size, as the app does (docs/engine.md §3, §14).
 */
class EngineReplayTest {
    private static Bundle bundle() throws Exception {
        return Bundle.load(BundleFiles.directory(Fixtures.path("kblm.bundle")));
    }

    private interface ManifestEdit {
        void apply(JSONObject manifest) throws JSONException;
    }

    /** The toy bundle with its manifest.json edited (the manifest is not checksummed). */
    private static Bundle edited(ManifestEdit edit) throws Exception {
        return edited("kblm.bundle", edit);
    }

    private static Bundle edited(String property, ManifestEdit edit) throws Exception {
        final BundleFiles dir = BundleFiles.directory(Fixtures.path(property));
        return Bundle.load(new BundleFiles() {
            @Override
            public byte[] read(String name) throws IOException {
                if (!name.equals("manifest.json")) return dir.read(name);
                try {
                    JSONObject manifest = new JSONObject(new String(dir.read(name), Bytes.UTF8));
                    edit.apply(manifest);
                    return manifest.toString().getBytes(Bytes.UTF8);
                } catch (JSONException e) {
                    throw new IOException(e);
                }
            }

            @Override
            public String describe(String name) {
                return dir.describe(name);
            }
        });
    }

    /** The toy bundle with the other sentence_context ("reset" <-> "carry"). */
    private static Bundle otherContext() throws Exception {
        return edited(m -> m.put("sentence_context", m.optString("sentence_context", "reset").equals("reset") ? "carry" : "reset"));
    }

    /** {@code bundle} as a bundle whose manifest asks for {@code size} words on the strip (itself if it does). */
    private static Bundle withStripSize(Bundle bundle, int size) throws Exception {
        return withStripSize(bundle, size, false);
    }

    private static Bundle withStripSize(Bundle bundle, int size, boolean lexicon) throws Exception {
        if (bundle.stripSize == size) return bundle;
        String context = bundle.resetAtSentenceStart ? "reset" : "carry";
        Bundle sized = edited(lexicon ? "kblm.lexicon.bundle" : "kblm.bundle",
                m -> m.put("sentence_context", context).put("engine", new JSONObject().put("strip_size", size)));
        assertEquals(size, sized.stripSize, "the loader reads engine.strip_size");
        return sized;
    }

    private static JSONObject traces() throws Exception {
        return Fixtures.json(Fixtures.path("kblm.traces"));
    }

    @Test
    void tracesComeFromThisBundle() throws Exception {
        JSONObject traces = traces();
        assertEquals(1, traces.getInt("format_version"));
        String sha = bundle().manifest.getJSONObject("files").getJSONObject("model.tflite").getString("sha256");
        assertEquals(sha, traces.getJSONObject("bundle").getString("model_sha256"), "traces of another model");
        assertEquals(bundle().stripSize, traces.getJSONObject("bundle").getInt("strip_size"), "the bundle's strip size");
    }

    @TestFactory
    List<DynamicTest> everyTraceReplays() throws Exception {
        JSONArray traces = traces().getJSONArray("traces");
        assertTrue(traces.length() > 0, "no traces in " + Fixtures.path("kblm.traces"));
        List<DynamicTest> tests = new ArrayList<>();
        for (Bundle bundle : new Bundle[] {bundle(), otherContext()}) {
            String context = bundle.resetAtSentenceStart ? " (sentences reset)" : " (sentences carry)";
            for (int i = 0; i < traces.length(); i++) {
                JSONObject trace = traces.getJSONObject(i);
                tests.add(DynamicTest.dynamicTest(trace.getString("name") + context, () -> replay(bundle, trace)));
            }
        }
        return tests;
    }

    /**
     * Traces of a bundle whose cell is Gboard's CIFG with a projection (keyboard_lm.training.cells):
     * its state tensors h and c differ in size. The engine treats the state as the manifest's
     * named arrays, so the same replay passes unchanged.
     */
    @TestFactory
    List<DynamicTest> anotherCellKindReplays() throws Exception {
        Bundle cifg = Bundle.load(BundleFiles.directory(Fixtures.path("kblm.cifg.bundle")));
        JSONObject recorded = Fixtures.json(Fixtures.path("kblm.cifg.traces"));
        assertEquals(cifg.manifest.getJSONObject("files").getJSONObject("model.tflite").getString("sha256"),
                recorded.getJSONObject("bundle").getString("model_sha256"), "traces of another model");
        assertEquals("cifg", cifg.manifest.getJSONObject("model").getString("cell"));
        assertNotEquals(cifg.stateSizes[0], cifg.stateSizes[1], "h (projected) and c differ in size");
        JSONArray traces = recorded.getJSONArray("traces");
        assertTrue(traces.length() > 0, "no traces in " + Fixtures.path("kblm.cifg.traces"));
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < traces.length(); i++) {
            JSONObject trace = traces.getJSONObject(i);
            tests.add(DynamicTest.dynamicTest("cifg " + trace.getString("name"), () -> replay(cifg, trace)));
        }
        return tests;
    }

    /**
     * Traces of the toy bundle with a lexicon (docs/engine.md §16) and of engines with user words
     * (§17): completions and next words outside the vocabulary, words learned after two commits,
     * un-learned on backspace, removed (blocked) and added, and a restart from the saved file
     * (which must be the Python side's, byte for byte).
     */
    @TestFactory
    List<DynamicTest> lexiconTracesReplay() throws Exception {
        Bundle lexicon = Bundle.load(BundleFiles.directory(Fixtures.path("kblm.lexicon.bundle")));
        assertTrue(lexicon.lexicon != null && lexicon.lexicon.size() > 0, "the bundle has a lexicon");
        JSONObject recorded = Fixtures.json(Fixtures.path("kblm.lexicon.traces"));
        assertEquals(lexicon.manifest.getJSONObject("files").getJSONObject("lexicon.tsv.gz").getString("sha256"),
                recorded.getJSONObject("bundle").getString("lexicon_sha256"), "traces of another lexicon");
        JSONArray traces = recorded.getJSONArray("traces");
        assertTrue(traces.length() > 0, "no traces in " + Fixtures.path("kblm.lexicon.traces"));
        String context = lexicon.resetAtSentenceStart ? "carry" : "reset";
        Bundle other = Bundle.load(new BundleFiles() {
            final BundleFiles dir = BundleFiles.directory(Fixtures.path("kblm.lexicon.bundle"));

            @Override
            public byte[] read(String name) throws IOException {
                if (!name.equals("manifest.json")) return dir.read(name);
                try {
                    return new JSONObject(new String(dir.read(name), Bytes.UTF8)).put("sentence_context", context).toString().getBytes(Bytes.UTF8);
                } catch (JSONException e) {
                    throw new IOException(e);
                }
            }

            @Override
            public String describe(String name) {
                return dir.describe(name);
            }
        });
        List<DynamicTest> tests = new ArrayList<>();
        for (Bundle bundle : new Bundle[] {lexicon, other}) {
            String label = bundle.resetAtSentenceStart ? " (sentences reset)" : " (sentences carry)";
            for (int i = 0; i < traces.length(); i++) {
                JSONObject trace = traces.getJSONObject(i);
                tests.add(DynamicTest.dynamicTest("lexicon " + trace.getString("name") + label, () -> replay(bundle, trace)));
            }
        }
        return tests;
    }

    private static void replay(Bundle loaded, JSONObject trace) throws Exception {
        JSONObject options = trace.getJSONObject("engine");
        Bundle bundle = loaded.stripSize == options.getInt("strip_size") ? loaded
                : withStripSize(loaded, options.getInt("strip_size"), loaded.lexicon != null);
        ReplayModel model = new ReplayModel(trace.getJSONArray("model_steps"), bundle.stateSizes, bundle.resetAtSentenceStart);
        PersonalCache cache = options.isNull("cache") ? null
                : PersonalCache.fromJson(options.getJSONObject("cache"), bundle.vocabulary.size(), "trace cache");
        UserWords userWords = options.optJSONObject("user_words") == null ? null
                : UserWords.fromJson(options.getJSONObject("user_words"), "trace user words");
        KeyboardEngine engine = new KeyboardEngine(bundle, model, cache, options.getBoolean("no_repeat"), bundle.stripSize, userWords);
        assertEquals(options.getInt("strip_size"), engine.stripSize(), "the engine takes the bundle's strip size");
        model.arm();
        model.context = trace.getString("name") + " start";
        JSONArray keystrokes = trace.getJSONArray("keystrokes");
        int opening = keystrokes.length() > 0 ? keystrokes.getJSONObject(0).getJSONArray("steps").getInt(0) : model.recorded();
        model.expect(0, opening, 0, opening);
        JSONObject prime = trace.optJSONObject("prime");
        if (prime == null) engine.reset();
        else engine.reset(prime.getString("text"), prime.getBoolean("learn"));
        assertEquals(opening, model.cursor(), model.context + ": model steps");
        for (int k = 0; k < keystrokes.length(); k++) {
            JSONObject expected = keystrokes.getJSONObject(k);
            String key = expected.getString("key");
            String where = trace.getString("name") + " keystroke " + k + " (" + describe(key) + ") after "
                    + describe(engine.text());
            model.context = where;
            int beforeSteps = model.cursor();
            List<Integer> beforeFed = engine.fedIds();
            JSONArray steps = expected.getJSONArray("steps");
            model.expect(expected.getInt("kept"), expected.getJSONArray("fed").length(), steps.getInt(0), steps.getInt(1));
            if (key.equals("BACKSPACE")) {
                engine.backspace();
            } else if (key.equals("RESET")) {
                engine.reset();
            } else if (key.equals("JUMP")) {
                engine.reset(engine.text(), false, engine.isPrivate());  // a jump in a private field stays private
            } else if (key.equals("PRIVATE")) {
                engine.reset("", false, true);  // focus moves to a new, empty password field
            } else if (key.startsWith("TAP")) {
                int slot = Integer.parseInt(key.substring(3)) - 1;
                if (slot < engine.strip().size()) engine.tap(slot);
            } else if (key.startsWith("ADD:")) {
                engine.userWords().add(key.substring(4));
            } else if (key.startsWith("REMOVE:")) {
                assertEquals(expected.getBoolean("removed"), engine.userWords().remove(key.substring(7)), where + ": removed");
            } else if (key.equals("RESTART")) {  // saved, then a new engine from the files (§17)
                File file = UserWords.wordsPath(new File(scratch(), "cache.json"));
                file.deleteOnExit();  // registered after its directory, so deleted before it
                engine.userWords().save(file);
                assertEquals(expected.getString("saved"), new String(Bytes.readAll(new java.io.FileInputStream(file)), Bytes.UTF8),
                        where + ": the saved user-word file, byte for byte");
                List<String> warnings = new ArrayList<>();
                UserWords again = UserWords.loadOrStart(file, warnings::add);
                assertEquals(new ArrayList<String>(), warnings, where + ": the saved file reads back");
                if (cache != null) cache = PersonalCache.fromJson(cache.toJson(), bundle.vocabulary.size(), "saved cache");
                engine = new KeyboardEngine(bundle, model, cache, options.getBoolean("no_repeat"), bundle.stripSize, again);
            } else {
                engine.type(key);
            }
            List<Integer> fed = engine.fedIds();
            int kept = 0;
            while (kept < Math.min(beforeFed.size(), fed.size()) && beforeFed.get(kept).equals(fed.get(kept))) kept++;
            assertEquals(expected.getString("text"), engine.text(), where + ": text");
            assertEquals(expected.getString("prefix"), engine.prefix(), where + ": prefix");
            assertEquals(expected.getInt("kept"), kept, where + ": ids kept");
            assertEquals(ints(expected.getJSONArray("fed")), fed.subList(kept, fed.size()), where + ": ids fed");
            assertEquals(steps.getInt(0) + ".." + steps.getInt(1), beforeSteps + ".." + model.cursor(), where + ": model steps");
            assertEquals(Fixtures.strings(expected.getJSONArray("strip")), engine.strip(), where + ": strip");
            assertEquals(expected.getJSONArray("top").length() == 0, engine.logProbs() == null,
                    where + ": log-probabilities (none in a private field)");
            if (expected.has("learned")) {
                JSONArray words = new JSONArray();
                for (UserWords.Word word : engine.userWords().words()) words.put(new JSONArray().put(word.form).put(word.count));
                assertEquals(expected.getJSONArray("learned").toString(), words.toString(), where + ": learned words");
            }
        }
        assertEquals(model.recorded(), model.cursor(), trace.getString("name") + ": recorded model steps left over");
        if (trace.has("user_words_after")) {
            assertEquals(trace.getJSONObject("user_words_after").toString(), engine.userWords().toJson().toString(),
                    trace.getString("name") + ": user words at the end");
        }
        if (trace.has("cache_after")) {
            assertEquals(trace.getJSONObject("cache_after").getJSONArray("pairs").toString(),
                    cache.toJson().getJSONArray("pairs").toString(), trace.getString("name") + ": cache pairs at the end");
        }
    }

    /** A fresh directory for the files a restart writes. */
    private static File scratch() throws IOException {
        File dir = java.nio.file.Files.createTempDirectory("kblm-replay").toFile();
        dir.deleteOnExit();
        return dir;
    }

    private static List<Integer> ints(JSONArray array) throws Exception {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < array.length(); i++) out.add(array.getInt(i));
        return out;
    }

    private static String describe(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (int cp : CodePoints.of(text)) {
            if (cp >= 0x20 && cp < 0x7F) out.appendCodePoint(cp);
            else out.append(String.format("\\u{%X}", cp));
        }
        return out.append('"').toString();
    }

    /** The traces must exercise what the issue lists (so a thin trace file cannot pass silently). */
    @Test
    void tracesCoverTheEngine() throws Exception {
        JSONArray traces = traces().getJSONArray("traces");
        boolean tap = false, backspace = false, reset = false, completion = false, capital = false, cache = false, repeat = false;
        boolean primed = false, learnedPrime = false, smallCache = false, longField = false, jump = false;
        boolean privateField = false, privateCache = false, otherStrip = false, longStrip = false;
        boolean tapPast3 = false;
        for (int i = 0; i < traces.length(); i++) {
            JSONObject trace = traces.getJSONObject(i);
            JSONObject options = trace.getJSONObject("engine").optJSONObject("cache");
            cache |= options != null;
            smallCache |= options != null && options.getInt("capacity") <= 8 && trace.has("cache_after");
            primed |= trace.has("prime") && !trace.getJSONObject("prime").getBoolean("learn");
            learnedPrime |= trace.has("prime") && trace.getJSONObject("prime").getBoolean("learn");
            repeat |= !trace.getJSONObject("engine").getBoolean("no_repeat");
            int stripSize = trace.getJSONObject("engine").getInt("strip_size");
            otherStrip |= stripSize != Bundle.DEFAULT_STRIP_SIZE;
            longField |= trace.has("prime")
                    && CodePoints.length(trace.getJSONObject("prime").getString("text")) > 2 * KeyboardEngine.CONTEXT_CHARS;
            JSONArray keys = trace.getJSONArray("keystrokes");
            for (int k = 0; k < keys.length(); k++) {
                JSONObject key = keys.getJSONObject(k);
                tap |= key.getString("key").startsWith("TAP");
                backspace |= key.getString("key").equals("BACKSPACE");
                reset |= key.getString("key").equals("RESET");
                jump |= key.getString("key").equals("JUMP");
                boolean isPrivate = key.getString("key").equals("PRIVATE");
                privateField |= isPrivate;
                privateCache |= isPrivate && options != null && trace.has("cache_after");
                completion |= !key.getString("prefix").isEmpty() && key.getJSONArray("strip").length() > 0;
                JSONArray strip = key.getJSONArray("strip");
                for (int s = 0; s < strip.length(); s++) capital |= Character.isUpperCase(strip.getString(s).codePointAt(0));
                longStrip |= strip.length() > Bundle.DEFAULT_STRIP_SIZE;
                tapPast3 |= key.getString("key").startsWith("TAP") && Integer.parseInt(key.getString("key").substring(3)) > 3;
            }
        }
        assertTrue(tap && backspace && reset && completion && capital && cache && repeat,
                "traces lack one of: tap, backspace, reset, completion, capitalised strip, cache, repeat");
        assertTrue(primed && learnedPrime && smallCache, "traces lack one of: a primed field, a primed field the cache "
                + "learns, a small cache checked at the end");
        assertTrue(longField && jump, "traces lack a field longer than twice the engine's window, or a cursor jump");
        assertTrue(privateField && privateCache, "traces lack a private field, or one with a personal cache checked at the end");
        assertTrue(otherStrip && longStrip && tapPast3, "traces lack a strip size other than 3, a strip of more than 3 "
                + "words, or a tap past slot 3");
    }
}

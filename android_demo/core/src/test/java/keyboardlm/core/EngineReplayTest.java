package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The Python engine's golden traces (``kblm trace`` / keyboard_lm/traces.py) replayed through
 * the Java engine, keystroke by keystroke: same text, prefix, kept and fed ids, model steps
 * and strip. The model is answered from the recorded outputs of the real exported model.
 */
class EngineReplayTest {
    private static Bundle bundle() throws Exception {
        return Bundle.load(BundleFiles.directory(Fixtures.path("kblm.bundle")));
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
    }

    @TestFactory
    List<DynamicTest> everyTraceReplays() throws Exception {
        Bundle bundle = bundle();
        JSONArray traces = traces().getJSONArray("traces");
        assertTrue(traces.length() > 0, "no traces in " + Fixtures.path("kblm.traces"));
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < traces.length(); i++) {
            JSONObject trace = traces.getJSONObject(i);
            tests.add(DynamicTest.dynamicTest(trace.getString("name"), () -> replay(bundle, trace)));
        }
        return tests;
    }

    private static void replay(Bundle bundle, JSONObject trace) throws Exception {
        ReplayModel model = new ReplayModel(trace.getJSONArray("model_steps"), bundle.stateSizes);
        JSONObject options = trace.getJSONObject("engine");
        PersonalCache cache = options.isNull("cache") ? null
                : PersonalCache.fromJson(options.getJSONObject("cache"), bundle.vocabulary.size(), "trace cache");
        KeyboardEngine engine = new KeyboardEngine(bundle, model, cache, options.getBoolean("no_repeat"), KeyboardEngine.STRIP_SIZE);
        model.arm();
        model.context = trace.getString("name") + " start";
        engine.reset();
        JSONArray keystrokes = trace.getJSONArray("keystrokes");
        for (int k = 0; k < keystrokes.length(); k++) {
            JSONObject expected = keystrokes.getJSONObject(k);
            String key = expected.getString("key");
            String where = trace.getString("name") + " keystroke " + k + " (" + describe(key) + ") after "
                    + describe(engine.text());
            model.context = where;
            int beforeSteps = model.cursor();
            List<Integer> beforeFed = engine.fedIds();
            if (key.equals("BACKSPACE")) {
                engine.backspace();
            } else if (key.equals("RESET")) {
                engine.reset();
            } else if (key.startsWith("TAP")) {
                int slot = Integer.parseInt(key.substring(3)) - 1;
                if (slot < engine.strip().size()) engine.tap(slot);
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
            JSONArray steps = expected.getJSONArray("steps");
            assertEquals(steps.getInt(0) + ".." + steps.getInt(1), beforeSteps + ".." + model.cursor(), where + ": model steps");
            assertEquals(Fixtures.strings(expected.getJSONArray("strip")), engine.strip(), where + ": strip");
        }
        assertEquals(model.recorded(), model.cursor(), trace.getString("name") + ": recorded model steps left over");
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
        for (int i = 0; i < traces.length(); i++) {
            JSONObject trace = traces.getJSONObject(i);
            cache |= !trace.getJSONObject("engine").isNull("cache");
            repeat |= !trace.getJSONObject("engine").getBoolean("no_repeat");
            JSONArray keys = trace.getJSONArray("keystrokes");
            for (int k = 0; k < keys.length(); k++) {
                JSONObject key = keys.getJSONObject(k);
                tap |= key.getString("key").startsWith("TAP");
                backspace |= key.getString("key").equals("BACKSPACE");
                reset |= key.getString("key").equals("RESET");
                completion |= !key.getString("prefix").isEmpty() && key.getJSONArray("strip").length() > 0;
                JSONArray strip = key.getJSONArray("strip");
                for (int s = 0; s < strip.length(); s++) capital |= Character.isUpperCase(strip.getString(s).codePointAt(0));
            }
        }
        assertTrue(tap && backspace && reset && completion && capital && cache && repeat,
                "traces lack one of: tap, backspace, reset, completion, capitalised strip, cache, repeat");
    }
}

package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Consumer;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The adapter file (docs/engine.md §18.4) against one written by numpy alone
 * (tests/android/make_adapter_fixture.py, which test_java_core.py runs into the directory
 * "adapter" beside the Java tests' bundle: the toy bundle, its manifest given an adapter
 * block if it has none). Reading it, the half floats, writing the same format back, and each
 * bad input giving one line that names the file and the field.
 */
class AdapterTest {
    @TempDir
    File dir;

    private File fixture;
    private Bundle bundle;
    private JSONObject expected;
    private byte[] data;

    @BeforeEach
    void load() throws Exception {
        fixture = new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter");
        assertTrue(new File(fixture, "adapter.kbad").isFile(), fixture + ": no adapter.kbad (tests/android/make_adapter_fixture.py writes it)");
        bundle = Bundle.load(BundleFiles.directory(new File(fixture, "bundle")));
        expected = Fixtures.json(new File(fixture, "expected.json"));
        data = Bytes.readAll(new FileInputStream(new File(fixture, "adapter.kbad")));
    }

    private static float[] floats(JSONArray values) throws Exception {
        float[] out = new float[values.length()];
        for (int i = 0; i < out.length; i++) out[i] = (float) values.getDouble(i);
        return out;
    }

    /** Bitwise equality (-0.0 is not 0.0). */
    private static void assertSameFloats(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), what + "[" + i + "]: " + want[i] + " vs " + got[i]);
        }
    }

    @Test
    void readsTheFileNumpyWrote() throws Exception {
        assertTrue(bundle.hasAdapter());
        Adapter adapter = Adapter.load(new File(fixture, "adapter.kbad"), bundle);
        assertEquals(expected.getInt("rank"), adapter.rank);
        assertEquals(bundle.adapterRank(), adapter.rank);
        assertEquals(expected.getInt("feature_size"), adapter.featureSize);
        assertEquals(bundle.vocabularySize, adapter.vocabularySize);
        assertEquals(bundle.modelSha256(), adapter.modelSha256);
        assertEquals(Bytes.sha256(bundle.model), adapter.modelSha256);
        for (int i = 0; i < Adapter.ARRAYS.length; i++) {
            assertSameFloats(floats(expected.getJSONArray(Adapter.ARRAYS[i])), adapter.arrays()[i], Adapter.ARRAYS[i]);
        }
        assertEquals(65504f, adapter.bias[0]);  // the corner cases the fixture puts first
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(adapter.bias[1]));
        assertEquals(0x1p-24f, adapter.bias[2]);
        assertEquals(expected.getJSONObject("training").toString(), adapter.training.toString());
    }

    @Test
    void halfFloatsRoundAsNumpyDoes() throws Exception {
        JSONObject rounding = expected.getJSONObject("rounding");
        JSONArray floatBits = rounding.getJSONArray("float_bits"), halfBits = rounding.getJSONArray("half_bits");
        assertTrue(floatBits.length() > 1000);
        for (int i = 0; i < floatBits.length(); i++) {
            float value = Float.intBitsToFloat((int) floatBits.getLong(i));
            assertEquals(halfBits.getInt(i), Adapter.toHalf(value) & 0xffff,
                    "toHalf(" + value + ") [case " + i + "]: numpy gives 0x" + Integer.toHexString(halfBits.getInt(i)));
        }
        ByteBuffer all = ByteBuffer.allocate(4 * 0x10000).order(ByteOrder.LITTLE_ENDIAN);
        for (int h = 0; h < 0x10000; h++) {
            float value = Adapter.fromHalf((short) h);
            all.putFloat(Float.isNaN(value) ? 0f : value);
            if (!Float.isNaN(value)) assertEquals(h, Adapter.toHalf(value) & 0xffff, "half 0x" + Integer.toHexString(h) + " round trip");
        }
        assertEquals(expected.getString("all_halves_sha256"), Bytes.sha256(all.array()), "every half float as numpy widens it");
    }

    @Test
    void savesTheSameFormat() throws Exception {
        Adapter adapter = Adapter.load(new File(fixture, "adapter.kbad"), bundle);
        File saved = new File(dir, "user.kbad");
        adapter.save(saved);
        byte[] written = Bytes.readAll(new FileInputStream(saved));
        assertArrayEquals(payload(data), payload(written), "the payload, byte for byte");
        String header = new String(written, 12, headerLength(written), Bytes.UTF8);
        String[] keys = {"format_version", "bundle_model_sha256", "rank", "feature_size", "vocabulary_size", "dtype", "arrays",
            "payload_sha256", "training"};
        for (int i = 1; i < keys.length; i++) {
            assertTrue(header.indexOf("\"" + keys[i - 1] + "\"") < header.indexOf("\"" + keys[i] + "\""), "key order: " + header);
        }
        JSONObject mine = new JSONObject(header), theirs = header(data);
        for (String key : keys) assertEquals(String.valueOf(theirs.get(key)), String.valueOf(mine.get(key)), key);
        Adapter again = Adapter.load(saved, bundle);
        for (int i = 0; i < 3; i++) assertSameFloats(adapter.arrays()[i], again.arrays()[i], Adapter.ARRAYS[i]);
        // test_java_core.py reads this one back with numpy (either port reads the other's file)
        adapter.save(new File(fixture, "written-by-java.kbad"));

        Adapter zeros = Adapter.zeros(bundle);
        File zero = new File(dir, "zero.kbad");
        zeros.save(zero);
        for (float[] array : Adapter.load(zero, bundle).arrays()) {
            for (float value : array) assertEquals(0, Float.floatToIntBits(value));
        }
        float[] bias = adapter.bias.clone();
        bias[7] = 70000f;  // beyond the largest half float: would not load
        Adapter big = new Adapter(adapter.modelSha256, adapter.featureSize, adapter.rank, adapter.vocabularySize, bias, adapter.down,
                adapter.up, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> big.save(new File(dir, "big.kbad")));
        assertEquals(new File(dir, "big.kbad").getPath() + ": field adapter_bias: value [7] is 70000.0, not a finite float16", e.getMessage());
        assertFalse(new File(dir, "big.kbad").exists());
    }

    // -- bad files --------------------------------------------------------------------------

    private static int headerLength(byte[] file) {
        return ByteBuffer.wrap(file, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }

    private static JSONObject header(byte[] file) throws Exception {
        return new JSONObject(new String(file, 12, headerLength(file), Bytes.UTF8));
    }

    private static byte[] payload(byte[] file) {
        return Arrays.copyOfRange(file, 12 + headerLength(file), file.length);
    }

    /** A file of this header and payload (the header as given: re-sign the payload yourself). */
    private static byte[] file(JSONObject header, byte[] payload) {
        byte[] head = header.toString().getBytes(Bytes.UTF8);
        return ByteBuffer.allocate(12 + head.length + payload.length).order(ByteOrder.LITTLE_ENDIAN)
                .put("KBLMADAP".getBytes(Bytes.UTF8)).putInt(head.length).put(head).put(payload).array();
    }

    /** The fixture with its header edited. */
    private byte[] edited(Consumer<JSONObject> edit) throws Exception {
        JSONObject header = header(data);
        edit.accept(header);
        return file(header, payload(data));
    }

    private String failure(byte[] file) throws IOException {
        File path = new File(dir, "bad.kbad");
        try (FileOutputStream out = new FileOutputStream(path)) {
            out.write(file);
        }
        BundleException e = assertThrows(BundleException.class, () -> Adapter.load(path, bundle));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        String prefix = path.getPath() + ": field ";
        assertTrue(e.getMessage().startsWith(prefix), e.getMessage());
        return e.getMessage().substring(prefix.length());
    }

    private static void put(JSONObject object, String key, Object value) {
        try {
            object.put(key, value);
        } catch (org.json.JSONException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void wrongMagicOrHeaderLength() throws Exception {
        byte[] bad = data.clone();
        bad[0] = 'X';
        assertEquals("magic: not a keyboard-lm adapter file (it does not start with KBLMADAP)", failure(bad));
        assertEquals("magic: not a keyboard-lm adapter file (it does not start with KBLMADAP)", failure(Arrays.copyOf(data, 5)));
        assertEquals("header length: truncated (10 bytes)", failure(Arrays.copyOf(data, 10)));
        int length = headerLength(data);
        assertEquals("header length: " + length + " bytes, but only " + (length - 8) + " follow (truncated)",
                failure(Arrays.copyOf(data, 12 + length - 8)));
        byte[] notJson = data.clone();
        notJson[12] = '[';
        assertTrue(failure(notJson).startsWith("header: not a UTF-8 JSON object ("));
    }

    @Test
    void wrongVersionBundleOrShape() throws Exception {
        assertEquals("format_version: 2, but this keyboard reads adapter format 1",
                failure(edited(h -> put(h, "format_version", 2))));
        assertEquals("format_version: missing, but this keyboard reads adapter format 1",
                failure(edited(h -> h.remove("format_version"))));
        String other = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assertEquals("bundle_model_sha256: made for another model (\"" + other + "\"), not this bundle's model.tflite ("
                + bundle.modelSha256() + ")", failure(edited(h -> put(h, "bundle_model_sha256", other))));
        int rank = bundle.adapterRank();
        assertEquals("rank: " + (rank + 1) + ", but the bundle's adapter has rank " + rank, failure(edited(h -> put(h, "rank", rank + 1))));
        assertEquals("feature_size: 7.5, but the bundle's adapter has feature_size " + bundle.adapterFeatureSize(),
                failure(edited(h -> put(h, "feature_size", 7.5))));
        assertEquals("vocabulary_size: 3, but the bundle's adapter has vocabulary_size " + bundle.vocabularySize,
                failure(edited(h -> put(h, "vocabulary_size", 3))));
        assertEquals("dtype: \"float32\", expected \"float16\"", failure(edited(h -> put(h, "dtype", "float32"))));
        String arrays = failure(edited(h -> {
            try {
                h.getJSONArray("arrays").getJSONObject(1).put("shape", new JSONArray().put(rank).put(bundle.adapterFeatureSize()));
            } catch (org.json.JSONException e) {
                throw new IllegalStateException(e);
            }
        }));
        assertTrue(arrays.startsWith("arrays: [") && arrays.endsWith(", expected [{\"name\": \"adapter_bias\", \"shape\": ["
                + bundle.vocabularySize + "]}, {\"name\": \"adapter_down\", \"shape\": [" + bundle.adapterFeatureSize() + ", " + rank
                + "]}, {\"name\": \"adapter_up\", \"shape\": [" + rank + ", " + bundle.vocabularySize + "]}]"), arrays);
    }

    @Test
    void truncatedOrCorruptPayload() throws Exception {
        int bytes = payload(data).length;
        assertEquals(2 * (bundle.vocabularySize * (1 + bundle.adapterRank()) + bundle.adapterFeatureSize() * bundle.adapterRank()), bytes);
        assertEquals("payload: " + (bytes - 1) + " bytes, expected " + bytes + " (the arrays as float16); truncated",
                failure(Arrays.copyOf(data, data.length - 1)));
        assertEquals("payload: " + (bytes + 2) + " bytes, expected " + bytes + " (the arrays as float16)",
                failure(Arrays.copyOf(data, data.length + 2)));
        byte[] flipped = data.clone();
        flipped[flipped.length - 3] ^= 4;
        assertEquals("payload_sha256: does not match the payload (tampered or corrupt)", failure(flipped));
    }

    @Test
    void notFiniteValues() throws Exception {
        int v = bundle.vocabularySize, r = bundle.adapterRank();
        short[] bad = {0x7e00, (short) 0xfc00};  // NaN, -infinity
        String[] shown = {"NaN", "-Infinity"};
        for (int i = 0; i < bad.length; i++) {
            byte[] payload = payload(data);
            int at = v + r + 1;  // adapter_down [1, 1]
            ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).putShort(2 * at, bad[i]);
            JSONObject header = header(data);
            header.put("payload_sha256", Bytes.sha256(payload));  // re-signed: only the value is wrong
            assertEquals("adapter_down: value [1, 1] is " + shown[i] + " (every value must be finite)", failure(file(header, payload)));
        }
    }

    @Test
    void bundleWithoutAnAdapter() throws Exception {
        Bundle plain = Bundle.load(BundleFiles.directory(Fixtures.path("kblm.bundle")));
        if (plain.hasAdapter()) {  // the toy bundle was exported with one: drop the block from a copy
            File copy = new File(dir, "plain");
            assertTrue(copy.mkdir());
            for (String name : new String[] {"model.tflite", "vocab.txt", "vocab.json", "manifest.json"}) {
                byte[] bytes = Bytes.readAll(new FileInputStream(new File(Fixtures.path("kblm.bundle"), name)));
                if (name.equals("manifest.json")) {
                    JSONObject manifest = new JSONObject(new String(bytes, Bytes.UTF8));
                    manifest.remove("adapter");
                    manifest.getJSONObject("files").remove(Bundle.GENERAL_FILE);  // its general sample goes with it
                    bytes = manifest.toString().getBytes(Bytes.UTF8);
                }
                try (FileOutputStream out = new FileOutputStream(new File(copy, name))) {
                    out.write(bytes);
                }
            }
            plain = Bundle.load(BundleFiles.directory(copy));
        }
        assertFalse(plain.hasAdapter());
        assertEquals(0, plain.adapterRank() + plain.adapterWindow() + plain.adapterFeatureSize());
        Bundle base = plain;
        BundleException e = assertThrows(BundleException.class, () -> Adapter.load(new File(fixture, "adapter.kbad"), base));
        assertTrue(e.getMessage().startsWith("manifest.json: field adapter is missing: the bundle takes no adapter"), e.getMessage());
        assertThrows(BundleException.class, () -> Adapter.zeros(base));
        File missing = new File(dir, "none.kbad");
        e = assertThrows(BundleException.class, () -> Adapter.load(missing, bundle));
        assertEquals(missing.getPath() + ": missing (no adapter file)", e.getMessage());
    }

    @Test
    void manifestAdapterBlockIsChecked() throws Exception {
        File copy = new File(dir, "bundle");
        assertTrue(copy.mkdir());
        File source = new File(fixture, "bundle");
        for (String name : new String[] {"model.tflite", "vocab.txt", "vocab.json"}) {
            try (FileOutputStream out = new FileOutputStream(new File(copy, name))) {
                out.write(Bytes.readAll(new FileInputStream(new File(source, name))));
            }
        }
        JSONObject manifest = Fixtures.json(new File(source, "manifest.json"));
        String name = new File(copy, "manifest.json").getPath();
        Object[][] cases = {
            {"rank", 0, "field adapter.rank must be a positive integer, not 0"},
            {"window", "8", "field adapter.window must be a positive integer, not \"8\""},
            {"feature_size", null, "field adapter.feature_size is missing (a positive integer expected)"},
            {"format_version", 3, "field adapter.format_version must be 2 (the adapter format this keyboard-lm reads), not 3"},
            {"format_version", null, "field adapter.format_version is missing (2 (the adapter format this keyboard-lm reads) expected)"},
        };
        for (Object[] c : cases) {
            JSONObject edited = new JSONObject(manifest.toString());
            if (c[1] == null) edited.getJSONObject("adapter").remove((String) c[0]);
            else edited.getJSONObject("adapter").put((String) c[0], c[1]);
            try (FileOutputStream out = new FileOutputStream(new File(copy, "manifest.json"))) {
                out.write(edited.toString().getBytes(Bytes.UTF8));
            }
            BundleException e = assertThrows(BundleException.class, () -> Bundle.load(BundleFiles.directory(copy)));
            assertEquals(name + ": " + c[2], e.getMessage());
        }
        // block format 1 (a train signature without reset, one sentence per window): the bundle
        // suggests as before, and the training loop refuses it in one line asking to re-export
        JSONObject old = new JSONObject(manifest.toString());
        old.getJSONObject("adapter").put("format_version", 1);
        try (FileOutputStream out = new FileOutputStream(new File(copy, "manifest.json"))) {
            out.write(old.toString().getBytes(Bytes.UTF8));
        }
        Bundle loaded = Bundle.load(BundleFiles.directory(copy));
        assertTrue(loaded.hasAdapter());
        assertEquals(1, loaded.adapterFormat());
        BundleException refused = assertThrows(BundleException.class,
                () -> AdapterTraining.forBundle(loaded, AdapterTraining.Options.DEFAULT));
        assertEquals("manifest.json: field adapter.format_version is 1: its train signature is from an earlier keyboard-lm "
                + "(one sentence per window); re-export the bundle with this one (adapter format 2) to adapt", refused.getMessage());
        JSONObject edited = new JSONObject(manifest.toString());
        edited.getJSONObject("adapter").getJSONArray("parameters").getJSONObject(2).put("name", "adapter_other");
        try (FileOutputStream out = new FileOutputStream(new File(copy, "manifest.json"))) {
            out.write(edited.toString().getBytes(Bytes.UTF8));
        }
        BundleException e = assertThrows(BundleException.class, () -> Bundle.load(BundleFiles.directory(copy)));
        assertTrue(e.getMessage().startsWith(name + ": field adapter.parameters must be the three arrays of docs/engine.md §18"), e.getMessage());
    }
}

package keyboardlm.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.util.Arrays;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The user's adapter (docs/engine.md §18): three arrays added to the model's logits,
 *
 *   logits = base_logits(features) + (features . down) . up + bias
 *
 * with {@code bias} [V], {@code down} [F, r] and {@code up} [r, V], row-major and flat here. A
 * zero adapter is the base model. The arrays are never modified once the adapter is made
 * (the caller must not modify them either), so an adapter is shared as is.
 *
 * The {@code .kbad} file (§18.4; keyboard_lm/phone/adapter.py writes the same), little-endian:
 * the 8 bytes {@code KBLMADAP}, the header length H (u32), H bytes of UTF-8 JSON (format_version,
 * bundle_model_sha256, rank, feature_size, vocabulary_size, dtype "float16", arrays, payload_sha256,
 * training) and the payload: the arrays in order as IEEE half floats. {@link #load} checks every
 * field against the bundle; any fault is a one-line BundleException naming the file and the field,
 * and the keyboard runs on the base model.
 */
public final class Adapter {
    public static final int FORMAT_VERSION = 1;
    public static final String MAGIC = "KBLMADAP";
    /** The arrays in the file's and the signatures' order (§18's table). */
    public static final String[] ARRAYS = {"adapter_bias", "adapter_down", "adapter_up"};
    public static final String DTYPE = "float16";
    private static final Charset LATIN1 = Charset.forName("ISO-8859-1");

    /** The bundle's model this adapter belongs to (its files."model.tflite".sha256). */
    public final String modelSha256;
    public final int featureSize;
    public final int rank;
    public final int vocabularySize;
    /** [V] */
    public final float[] bias;
    /** [F, r], row-major: down[f * rank + j]. */
    public final float[] down;
    /** [r, V], row-major: up[j * vocabularySize + w]. */
    public final float[] up;
    /** The header's free-form training figures (an empty object when there are none). */
    public final JSONObject training;

    /**
     * An adapter for the model {@code modelSha256} with arrays of the shapes §18 gives F, r and V
     * (anything else is an IllegalArgumentException). {@code training}: figures for the file's
     * header (null: none).
     */
    public Adapter(String modelSha256, int featureSize, int rank, int vocabularySize, float[] bias, float[] down,
                   float[] up, JSONObject training) {
        if (featureSize <= 0 || rank <= 0 || vocabularySize <= 0) {
            throw new IllegalArgumentException("adapter sizes must be positive: F " + featureSize + ", r " + rank + ", V " + vocabularySize);
        }
        long[] expected = {vocabularySize, (long) featureSize * rank, (long) rank * vocabularySize};
        float[][] arrays = {bias, down, up};
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i] == null || arrays[i].length != expected[i]) {
                throw new IllegalArgumentException(ARRAYS[i] + ": " + (arrays[i] == null ? "missing" : arrays[i].length + " values")
                        + ", expected " + expected[i] + " " + Arrays.toString(shapes(featureSize, rank, vocabularySize)[i]));
            }
        }
        this.modelSha256 = modelSha256;
        this.featureSize = featureSize;
        this.rank = rank;
        this.vocabularySize = vocabularySize;
        this.bias = bias;
        this.down = down;
        this.up = up;
        this.training = training == null ? new JSONObject() : training;
    }

    /** The arrays in {@link #ARRAYS} order. */
    public float[][] arrays() {
        return new float[][] {bias, down, up};
    }

    /** The zero adapter of the bundle's adapter block: the base model, bit for bit. */
    public static Adapter zeros(Bundle bundle) throws BundleException {
        requireBlock(bundle, "the zero adapter");
        int f = bundle.adapterFeatureSize(), r = bundle.adapterRank(), v = bundle.vocabularySize;
        return new Adapter(bundle.modelSha256(), f, r, v, new float[v], new float[f * r], new float[r * v], null);
    }

    /** The shapes of bias, down and up (§18's table). */
    static int[][] shapes(int featureSize, int rank, int vocabularySize) {
        return new int[][] {{vocabularySize}, {featureSize, rank}, {rank, vocabularySize}};
    }

    /** True if {@code listed} is [{"name", "shape"}] naming {@link #ARRAYS} in order with these shapes, nothing else. */
    static boolean sameArrays(Object listed, int[][] shapes) {
        if (!(listed instanceof JSONArray) || ((JSONArray) listed).length() != ARRAYS.length) return false;
        JSONArray list = (JSONArray) listed;
        for (int i = 0; i < ARRAYS.length; i++) {
            JSONObject entry = list.optJSONObject(i);
            if (entry == null || entry.length() != 2 || !ARRAYS[i].equals(entry.opt("name"))) return false;
            JSONArray shape = entry.optJSONArray("shape");
            if (shape == null || shape.length() != shapes[i].length) return false;
            for (int d = 0; d < shapes[i].length; d++) {
                Object size = shape.opt(d);
                if (!(size instanceof Integer || size instanceof Long) || ((Number) size).longValue() != shapes[i][d]) return false;
            }
        }
        return true;
    }

    private static void requireBlock(Bundle bundle, String what) throws BundleException {
        if (!bundle.hasAdapter()) {
            throw new BundleException("manifest.json: field adapter is missing: the bundle takes no adapter (" + what
                    + " needs a bundle exported with one, docs/engine.md §18)");
        }
    }

    // -- the file ---------------------------------------------------------------------------

    /** Reads and checks {@code file} against {@code bundle} (§18.4). */
    public static Adapter load(File file, Bundle bundle) throws BundleException {
        byte[] data;
        try {
            data = Bytes.readAll(new FileInputStream(file));
        } catch (FileNotFoundException e) {
            throw new BundleException(file.getPath() + ": missing (no adapter file)");
        } catch (IOException e) {
            throw new BundleException(file.getPath() + ": unreadable (" + oneLine(e.getMessage()) + ")");
        }
        return parse(data, bundle, file.getPath());
    }

    /** The adapter in {@code data}, checked against {@code bundle}; {@code source} names the file in messages. */
    public static Adapter parse(byte[] data, Bundle bundle, String source) throws BundleException {
        requireBlock(bundle, source);
        int f = bundle.adapterFeatureSize(), r = bundle.adapterRank(), v = bundle.vocabularySize;
        if (data.length < MAGIC.length() || !MAGIC.equals(new String(data, 0, MAGIC.length(), LATIN1))) {
            throw new BundleException(source + ": field magic: not a keyboard-lm adapter file (it does not start with " + MAGIC + ")");
        }
        if (data.length < MAGIC.length() + 4) {
            throw new BundleException(source + ": field header length: truncated (" + data.length + " bytes)");
        }
        ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = in.getInt(MAGIC.length()) & 0xffffffffL;
        int start = MAGIC.length() + 4;
        if (headerLength > data.length - start) {
            throw new BundleException(source + ": field header length: " + headerLength + " bytes, but only "
                    + (data.length - start) + " follow (truncated)");
        }
        JSONObject header;
        try {
            String text = Bytes.UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(data, start, (int) headerLength)).toString();
            header = new JSONObject(text);
        } catch (CharacterCodingException | JSONException e) {
            throw new BundleException(source + ": field header: not a UTF-8 JSON object (" + oneLine(e.getMessage()) + ")");
        }
        Object version = header.opt("format_version");
        if (!isInteger(version, FORMAT_VERSION)) {
            throw new BundleException(source + ": field format_version: " + show(version) + ", but this keyboard reads adapter format "
                    + FORMAT_VERSION);
        }
        Object sha = header.opt("bundle_model_sha256");
        if (!bundle.modelSha256().equals(sha)) {
            throw new BundleException(source + ": field bundle_model_sha256: made for another model (" + show(sha)
                    + "), not this bundle's model.tflite (" + bundle.modelSha256() + ")");
        }
        Object[][] sizes = {{"rank", r}, {"feature_size", f}, {"vocabulary_size", v}};
        for (Object[] size : sizes) {
            Object value = header.opt((String) size[0]);
            if (!isInteger(value, (Integer) size[1])) {
                throw new BundleException(source + ": field " + size[0] + ": " + show(value) + ", but the bundle's adapter has "
                        + size[0] + " " + size[1]);
            }
        }
        if (!DTYPE.equals(header.opt("dtype"))) {
            throw new BundleException(source + ": field dtype: " + show(header.opt("dtype")) + ", expected \"" + DTYPE + "\"");
        }
        int[][] shapes = shapes(f, r, v);
        if (!sameArrays(header.opt("arrays"), shapes)) {
            throw new BundleException(source + ": field arrays: " + show(header.opt("arrays")) + ", expected " + arraysJson(shapes));
        }
        int payloadStart = start + (int) headerLength;
        long expectedBytes = 2L * ((long) v + (long) f * r + (long) r * v);
        if (data.length - payloadStart != expectedBytes) {
            throw new BundleException(source + ": field payload: " + (data.length - payloadStart) + " bytes, expected "
                    + expectedBytes + " (the arrays as float16)" + (data.length - payloadStart < expectedBytes ? "; truncated" : ""));
        }
        byte[] payload = Arrays.copyOfRange(data, payloadStart, data.length);
        Object payloadSha = header.opt("payload_sha256");
        if (!Bytes.sha256(payload).equals(payloadSha)) {
            throw new BundleException(source + ": field payload_sha256: does not match the payload (tampered or corrupt)");
        }
        ByteBuffer values = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        float[][] arrays = {new float[v], new float[f * r], new float[r * v]};
        for (int i = 0; i < arrays.length; i++) {
            for (int k = 0; k < arrays[i].length; k++) {
                float value = fromHalf(values.getShort());
                if (Float.isNaN(value) || Float.isInfinite(value)) {
                    throw new BundleException(source + ": field " + ARRAYS[i] + ": value " + index(k, shapes[i]) + " is " + value
                            + " (every value must be finite)");
                }
                arrays[i][k] = value;
            }
        }
        JSONObject training = header.optJSONObject("training");
        return new Adapter(bundle.modelSha256(), f, r, v, arrays[0], arrays[1], arrays[2], training);
    }

    /**
     * Writes the file (§18.4): written whole beside {@code path}, then renamed over it. A value that
     * is not finite as a half float (NaN, infinite, beyond 65504) is an IllegalArgumentException
     * naming the file and the array: such a file would not load.
     */
    public void save(File path) throws IOException {
        Bytes.writeAtomically(path, toBytes(path.getPath()));
    }

    /** The file's bytes ({@code source} names the file in an error). */
    byte[] toBytes(String source) {
        float[][] arrays = arrays();
        int count = 0;
        for (float[] array : arrays) count += array.length;
        ByteBuffer payload = ByteBuffer.allocate(2 * count).order(ByteOrder.LITTLE_ENDIAN);
        int[][] shapes = shapes(featureSize, rank, vocabularySize);
        for (int i = 0; i < arrays.length; i++) {
            for (int k = 0; k < arrays[i].length; k++) {
                short half = toHalf(arrays[i][k]);
                if ((half & 0x7c00) == 0x7c00) {
                    throw new IllegalArgumentException(source + ": field " + ARRAYS[i] + ": value " + index(k, shapes[i]) + " is "
                            + arrays[i][k] + ", not a finite float16");
                }
                payload.putShort(half);
            }
        }
        byte[] body = payload.array();
        // The spec's key order, written by hand (org.json does not promise an order).
        String header = "{\"format_version\": " + FORMAT_VERSION
                + ", \"bundle_model_sha256\": " + JSONObject.quote(modelSha256)
                + ", \"rank\": " + rank
                + ", \"feature_size\": " + featureSize
                + ", \"vocabulary_size\": " + vocabularySize
                + ", \"dtype\": " + JSONObject.quote(DTYPE)
                + ", \"arrays\": " + arraysJson(shapes)
                + ", \"payload_sha256\": " + JSONObject.quote(Bytes.sha256(body))
                + ", \"training\": " + training
                + "}";
        byte[] head = header.getBytes(Bytes.UTF8);
        ByteBuffer out = ByteBuffer.allocate(MAGIC.length() + 4 + head.length + body.length).order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC.getBytes(LATIN1)).putInt(head.length).put(head).put(body);
        return out.array();
    }

    private static String arraysJson(int[][] shapes) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < ARRAYS.length; i++) {
            out.append(i == 0 ? "" : ", ").append("{\"name\": \"").append(ARRAYS[i]).append("\", \"shape\": [");
            for (int d = 0; d < shapes[i].length; d++) out.append(d == 0 ? "" : ", ").append(shapes[i][d]);
            out.append("]}");
        }
        return out.append(']').toString();
    }

    /** Flat index {@code k} of an array of {@code shape} as [i] or [i, j]. */
    private static String index(int k, int[] shape) {
        return shape.length == 1 ? "[" + k + "]" : "[" + k / shape[1] + ", " + k % shape[1] + "]";
    }

    private static boolean isInteger(Object value, int expected) {
        return (value instanceof Integer || value instanceof Long) && ((Number) value).longValue() == expected;
    }

    /** A header value as JSON writes it (a string quoted, missing as null), for messages; one line, at most 200 chars. */
    private static String show(Object value) {
        String text = value == null ? "missing" : value instanceof String ? JSONObject.quote((String) value) : String.valueOf(value);
        text = oneLine(text);
        return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }

    private static String oneLine(String text) {
        return String.valueOf(text).replaceAll("\\s+", " ").trim();
    }

    // -- half floats --------------------------------------------------------------------------
    // Written by hand: Float.float16ToFloat and Float.floatToFloat16 arrived in Java 20, and
    // neither this JDK (17) nor Android's runtime has them.

    /** The float a half float's bits stand for (exact: every half float is a float). */
    static float fromHalf(short half) {
        int h = half & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1f;
        int mantissa = h & 0x3ff;
        if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
            float magnitude = mantissa * 0x1p-24f;
            return sign != 0 ? -magnitude : magnitude;
        }
        if (exponent == 31) return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));  // infinity, NaN
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    /**
     * The half float nearest {@code value}, ties to even (IEEE's default; numpy's astype(float16)
     * from float32): beyond the largest half (65504) from 65520 on is infinity; below the
     * smallest subnormal (2^-24) down to 2^-25 is zero. NaN stays NaN (numpy's bits).
     */
    static short toHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int magnitude = bits & 0x7fffffff;
        if (magnitude >= 0x7f800000) {  // infinity or NaN
            if (magnitude == 0x7f800000) return (short) (sign | 0x7c00);
            int nan = 0x7c00 | ((magnitude & 0x7fffff) >>> 13);
            return (short) (sign | (nan == 0x7c00 ? 0x7c01 : nan));
        }
        if (magnitude >= 0x477ff000) return (short) (sign | 0x7c00);  // 65520 and up: rounds to infinity
        int exponent = magnitude >>> 23;
        if (exponent < 113) {  // below 2^-14: a subnormal half (or zero)
            if (magnitude < 0x33000000) return (short) sign;  // below 2^-25
            int mantissa = (magnitude & 0x7fffff) | 0x800000;
            int shift = 126 - exponent;  // 14 to 24
            int q = mantissa >>> shift, rest = mantissa & ((1 << shift) - 1), half = 1 << (shift - 1);
            if (rest > half || (rest == half && (q & 1) == 1)) q++;  // may carry into the smallest normal: still right
            return (short) (sign | q);
        }
        int q = ((exponent - 112) << 10) | ((magnitude & 0x7fffff) >>> 13);
        int rest = magnitude & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (q & 1) == 1)) q++;  // a carry into the exponent is right too
        return (short) (sign | q);
    }
}

package keyboardlm.core;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * A verified bundle (keyboard_lm/phone/bundle.py): model.tflite, vocab.txt, vocab.json and manifest.json.
 * Loading checks what load_bundle checks -- format version, the files and signature fields,
 * every file's sha256, the tokenizer spec version (the manifest's and vocab.json's, which
 * must agree, as must the special ids), the vocabulary, its size against the model's output
 * size (signature.vocabulary_size) -- and
 * reads the step signature's state layout, the sentence framing the model was trained with
 * and the engine's options (the strip size: docs/engine.md §3); and, if the manifest has a
 * lexicon block, lexicon.tsv.gz (its sha256, gzip, format, order and words outside the
 * vocabulary: docs/engine.md §16); and the adapter block's rank, window and feature size, if
 * the manifest has one (docs/engine.md §18), and its general sample, adapter-general.txt, if the
 * block names one (its sha256, UTF-8, one message a line, as many as the block says: §18.3's
 * forgetting guard).
 */
public final class Bundle {
    public static final int FORMAT_VERSION = 1;
    /** The manifest's adapter block format (docs/engine.md §18): 2, the train signature takes reset (packed windows);
     *  1 had no reset and is refused. The .kbad file has its own, {@link Adapter#FORMAT_VERSION}. */
    public static final int ADAPTER_BLOCK_FORMAT = 2;
    public static final String[] FILES = {"model.tflite", "vocab.txt", "vocab.json"};
    /** The adapter block's general sample (docs/engine.md §18.3): listed in files if and only if the block names it. */
    public static final String GENERAL_FILE = "adapter-general.txt";
    public static final String SIGNATURE = "step";
    /** Words on the strip when the manifest does not say (bundles made before engine.strip_size). */
    public static final int DEFAULT_STRIP_SIZE = 3;
    /** The most words engine.strip_size may ask for (keyboard_lm/phone/bundle.py's MAX_STRIP_SIZE). */
    public static final int MAX_STRIP_SIZE = 10;

    public final JSONObject manifest;
    public final Vocabulary vocabulary;
    /** The .tflite file's bytes (already read for its checksum; LiteRT takes them as a buffer). */
    public final byte[] model;
    /** State tensors in input order (h0, c0, h1, ...), each of shape [1, size]. */
    public final String[] stateNames;
    public final int[] stateSizes;
    /** Size of the model's log-probability output, from the manifest. */
    public final int vocabularySize;
    /** Message mode ("reset"): each sentence starts from an empty state; stream mode: "carry". */
    public final boolean resetAtSentenceStart;
    /** Words on the suggestion strip: the manifest's engine.strip_size, 3 if absent (docs/engine.md §3). */
    public final int stripSize;
    /** Words outside the vocabulary with counts (lexicon.tsv.gz, docs/engine.md §16), or null: the bundle has none. */
    public final Lexicon lexicon;
    /** The manifest's adapter block (docs/engine.md §18): rank r, window T, feature size F; null: the bundle has none
     *  (no adapter inputs to step, no train signature). */
    private final int[] adapter;
    /** The adapter block's general sample (adapter-general.txt), one message each; empty: the bundle has none. */
    private final List<String> generalMessages;

    private Bundle(JSONObject manifest, Vocabulary vocabulary, byte[] model, String[] stateNames, int[] stateSizes,
                   int vocabularySize, boolean resetAtSentenceStart, int stripSize, Lexicon lexicon, int[] adapter,
                   List<String> generalMessages) {
        this.lexicon = lexicon;
        this.adapter = adapter;
        this.generalMessages = generalMessages;
        this.manifest = manifest;
        this.vocabulary = vocabulary;
        this.model = model;
        this.stateNames = stateNames;
        this.stateSizes = stateSizes;
        this.vocabularySize = vocabularySize;
        this.resetAtSentenceStart = resetAtSentenceStart;
        this.stripSize = stripSize;
    }

    public static Bundle load(BundleFiles files) throws BundleException {
        String manifestName = files.describe("manifest.json");
        byte[] raw;
        try {
            raw = files.read("manifest.json");
        } catch (java.io.FileNotFoundException e) {
            throw new BundleException(manifestName + ": missing; not a keyboard-lm bundle");
        } catch (java.io.IOException e) {
            throw new BundleException(manifestName + ": unreadable (" + e.getMessage() + ")");
        }
        JSONObject manifest;
        try {
            manifest = new JSONObject(new String(raw, Bytes.UTF8));
        } catch (JSONException e) {
            throw new BundleException(manifestName + ": not valid JSON (" + e.getMessage() + ")");
        }
        if (!Vocabulary.isInt(manifest.opt("format_version"), FORMAT_VERSION)) {
            throw new BundleException(manifestName + ": bundle format_version " + manifest.opt("format_version")
                    + "; this app reads format " + FORMAT_VERSION);
        }
        JSONObject listed = manifest.optJSONObject("files");
        if (listed == null) {
            throw new BundleException(manifestName + ": field files is missing (it lists each file's sha256)");
        }
        JSONObject signature = manifest.optJSONObject("signature");
        if (signature == null) {
            throw new BundleException(manifestName + ": field signature is missing (the step model's inputs and outputs)");
        }
        boolean hasLexicon = checkLexiconBlock(manifest, listed, manifestName);
        boolean hasGeneral = checkGeneralListing(manifest, listed, manifestName);
        List<String> names = new ArrayList<>(java.util.Arrays.asList(FILES));
        if (hasLexicon) names.add(Lexicon.FILE);
        if (hasGeneral) names.add(GENERAL_FILE);
        byte[] model = null, lexiconData = null, generalData = null;
        for (String name : names) {
            JSONObject entry = listed.optJSONObject(name);
            String expected = entry == null ? null : entry.optString("sha256", null);
            if (expected == null) {
                throw new BundleException(manifestName + ": field files." + name + ".sha256 is missing");
            }
            byte[] data = Vocabulary.read(files, name);
            if (!Bytes.sha256(data).equals(expected)) {
                throw new BundleException(files.describe(name) + ": sha256 does not match manifest.json (tampered or corrupt)");
            }
            if (name.equals("model.tflite")) model = data;
            if (name.equals(Lexicon.FILE)) lexiconData = data;
            if (name.equals(GENERAL_FILE)) generalData = data;
        }
        Vocabulary vocabulary = Vocabulary.load(files);
        checkTokenizer(files, manifest, manifestName);
        Object size = signature.opt("vocabulary_size");
        if (!Vocabulary.isInt(size, vocabulary.size())) {
            throw new BundleException(files.describe("vocab.txt") + ": " + vocabulary.size() + " tokens, but the model outputs " + size);
        }
        if (!SIGNATURE.equals(signature.optString("name"))) {
            throw new BundleException(manifestName + ": field signature.name is " + signature.opt("name") + ", expected " + SIGNATURE);
        }
        JSONArray states = signature.optJSONArray("states");
        if (states == null || states.length() == 0) {
            throw new BundleException(manifestName + ": field signature.states must list the state tensors");
        }
        String[] stateNames = new String[states.length()];
        int[] sizes = new int[states.length()];
        for (int i = 0; i < stateNames.length; i++) {
            JSONObject state = states.optJSONObject(i);
            stateNames[i] = state == null ? "" : state.optString("name");
            sizes[i] = state == null ? 0 : state.optInt("size", 0);
            if (stateNames[i].isEmpty() || sizes[i] <= 0) {
                throw new BundleException(manifestName + ": field signature.states[" + i + "] needs a name and a positive size");
            }
        }
        String context = manifest.optString("sentence_context", "reset");
        if (!context.equals("reset") && !context.equals("carry")) {
            throw new BundleException(manifestName + ": field sentence_context is " + context + ", expected reset or carry");
        }
        int stripSize = stripSize(manifest, manifestName);
        int[] adapter = adapterBlock(manifest, vocabulary.size(), manifestName);
        List<String> general = !hasGeneral ? Collections.<String>emptyList() : generalMessages(generalData,
                ((Number) manifest.optJSONObject("adapter").optJSONObject("general").opt("messages")).longValue(),
                files.describe(GENERAL_FILE));
        Lexicon lexicon = !hasLexicon ? null : Lexicon.parse(lexiconData, vocabulary, Tokenizer.standard(),
                ((Number) manifest.optJSONObject("lexicon").opt("words")).longValue(), files.describe(Lexicon.FILE));
        return new Bundle(manifest, vocabulary, model, stateNames, sizes, vocabulary.size(), context.equals("reset"),
                stripSize, lexicon, adapter, general);
    }

    /**
     * The adapter block's general sample (docs/engine.md §18.3): adapter-general.txt's messages,
     * one a line (the text is not tokenized here: {@link AdapterTraining#encode} reads it as it
     * reads the user's messages), for the training loop's forgetting guard. Empty when the block
     * names none (nothing to guard with).
     */
    public List<String> adapterGeneralMessages() {
        return generalMessages;
    }

    /**
     * The general sample's file, as keyboard_lm/phone/bundle.py's _general_messages reads it:
     * UTF-8, cut at every newline (a last empty piece, after the final newline, is no message),
     * exactly {@code count} messages. Its sha256 was checked with every file.
     */
    static List<String> generalMessages(byte[] data, long count, String where) throws BundleException {
        CharsetDecoder decoder = Bytes.UTF8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(data);
        CharBuffer out = CharBuffer.allocate((int) Math.ceil(data.length * (double) decoder.maxCharsPerByte()) + 1);
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) result = decoder.flush(out);
        if (result.isError()) throw new BundleException(where + ": not UTF-8 (byte " + in.position() + ")");
        String text = out.flip().toString();
        List<String> lines = new ArrayList<>();
        for (int start = 0, end; ; start = end + 1) {
            end = text.indexOf('\n', start);
            if (end < 0) {
                if (start < text.length()) lines.add(text.substring(start));
                break;
            }
            lines.add(text.substring(start, end));
        }
        if (lines.size() != count) {
            throw new BundleException(where + ": " + String.format(Locale.ROOT, "%,d", lines.size()) + " messages, but manifest.json "
                    + "field adapter.general.messages is " + String.format(Locale.ROOT, "%,d", count));
        }
        return Collections.unmodifiableList(lines);
    }

    /** True if the manifest has an adapter block: step takes adapter_bias/down/up, and there is a train signature (§18). */
    public boolean hasAdapter() {
        return adapter != null;
    }

    /** The adapter's rank r (§18); 0 without an adapter block. */
    public int adapterRank() {
        return adapter == null ? 0 : adapter[0];
    }

    /** The train signature's fixed window T (§18.2); 0 without an adapter block. */
    /** The adapter block's format_version (0: no block); 1 has a train signature without reset, which the loop cannot run. */
    public int adapterFormat() {
        return adapter == null ? 0 : adapter[3];
    }

    public int adapterWindow() {
        return adapter == null ? 0 : adapter[1];
    }

    /** F, the size of the features the output layer reads (§18); 0 without an adapter block. */
    public int adapterFeatureSize() {
        return adapter == null ? 0 : adapter[2];
    }

    /** The manifest's files."model.tflite".sha256 (checked against the model's bytes at load): an adapter names it (§18.4). */
    public String modelSha256() {
        return manifest.optJSONObject("files").optJSONObject(FILES[0]).optString("sha256");
    }

    /**
     * The manifest's adapter block (docs/engine.md §18), or null when there is none, checked in the
     * Python loader's words (keyboard_lm/phone/bundle.py check_adapter_block): an object with
     * format_version {@link #ADAPTER_BLOCK_FORMAT} or 1 (a train signature without reset: step runs,
     * {@link AdapterTraining#forBundle} refuses it), positive integers rank, window and
     * feature_size, and parameters listing adapter_bias [V], adapter_down [F, r], adapter_up [r, V]
     * in that order. Returns
     * {rank, window, feature_size, format_version}. (The optimizer is the train signature's own business.)
     */
    static int[] adapterBlock(JSONObject manifest, int vocabularySize, String manifestName) throws BundleException {
        Object block = manifest.opt("adapter");
        if (block == null) return null;
        if (!(block instanceof JSONObject)) {
            throw new BundleException(manifestName + ": field adapter must be an object (docs/engine.md §18), not " + show(block));
        }
        JSONObject adapter = (JSONObject) block;
        Object version = adapter.opt("format_version");
        String what = ADAPTER_BLOCK_FORMAT + " (the adapter format this keyboard-lm reads)";
        if (version == null) throw new BundleException(manifestName + ": field adapter.format_version is missing (" + what + " expected)");
        long format = isInteger(version) ? ((Number) version).longValue() : -1;
        if (format != ADAPTER_BLOCK_FORMAT && format != 1) {
            throw new BundleException(manifestName + ": field adapter.format_version must be " + what + ", not " + show(version));
        }
        int[] out = new int[4];
        out[3] = (int) format;
        String[] fields = {"rank", "window", "feature_size"};
        for (int i = 0; i < fields.length; i++) {
            Object value = adapter.opt(fields[i]);
            if (value == null) {
                throw new BundleException(manifestName + ": field adapter." + fields[i] + " is missing (a positive integer expected)");
            }
            if (!isInteger(value) || ((Number) value).longValue() <= 0 || ((Number) value).longValue() > Integer.MAX_VALUE) {
                throw new BundleException(manifestName + ": field adapter." + fields[i] + " must be a positive integer, not " + show(value));
            }
            out[i] = ((Number) value).intValue();
        }
        int[][] shapes = Adapter.shapes(out[2], out[0], vocabularySize);
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < shapes.length; i++) {
            expected.append(i == 0 ? "" : ", ").append(Adapter.ARRAYS[i]).append(' ').append(java.util.Arrays.toString(shapes[i]));
        }
        String wanted = "the three arrays of docs/engine.md §18 with shapes from rank, feature_size and the vocabulary ("
                + expected + ")";
        Object parameters = adapter.opt("parameters");
        if (parameters == null) throw new BundleException(manifestName + ": field adapter.parameters is missing (" + wanted + " expected)");
        if (!Adapter.sameArrays(parameters, shapes)) {
            throw new BundleException(manifestName + ": field adapter.parameters must be " + wanted + ", not " + show(parameters));
        }
        return out;
    }

    /**
     * The manifest's lexicon block (docs/engine.md §16), checked in the Python loader's words:
     * an object with format_version 1 and a positive word count, present if and only if files
     * lists lexicon.tsv.gz. Returns whether the bundle has a lexicon.
     */
    static boolean checkLexiconBlock(JSONObject manifest, JSONObject listed, String manifestName) throws BundleException {
        Object block = manifest.opt("lexicon");
        if (block == null) {
            if (listed.has(Lexicon.FILE)) {
                throw new BundleException(manifestName + ": field lexicon is missing, but files lists " + Lexicon.FILE);
            }
            return false;
        }
        if (!(block instanceof JSONObject)) {
            throw new BundleException(manifestName + ": field lexicon must be an object with format_version and words, not " + show(block));
        }
        JSONObject lexicon = (JSONObject) block;
        String what = Lexicon.FORMAT_VERSION + " (the lexicon format this keyboard-lm reads)";
        Object version = lexicon.opt("format_version");
        if (version == null) throw new BundleException(manifestName + ": field lexicon.format_version is missing (" + what + " expected)");
        if (!isInteger(version) || ((Number) version).longValue() != Lexicon.FORMAT_VERSION) {
            throw new BundleException(manifestName + ": field lexicon.format_version must be " + what + ", not " + show(version));
        }
        Object words = lexicon.opt("words");
        if (words == null) throw new BundleException(manifestName + ": field lexicon.words is missing (a positive word count expected)");
        if (!isInteger(words) || ((Number) words).longValue() <= 0) {
            throw new BundleException(manifestName + ": field lexicon.words must be a positive word count, not " + show(words));
        }
        if (!listed.has(Lexicon.FILE)) {
            throw new BundleException(manifestName + ": field files." + Lexicon.FILE + " is missing, but the manifest has a lexicon block");
        }
        return true;
    }

    /**
     * The adapter block's general field against the files listed (keyboard_lm/phone/bundle.py
     * check_manifest, in its words): when the block has one it is {"file": "adapter-general.txt",
     * "messages": a positive integer} and files lists that file; files lists it only then.
     * Returns whether the bundle has a general sample. (An adapter block that is no object is
     * {@link #adapterBlock}'s to refuse.)
     */
    static boolean checkGeneralListing(JSONObject manifest, JSONObject listed, String manifestName) throws BundleException {
        Object block = manifest.opt("adapter");
        if (block != null && !(block instanceof JSONObject)) return false;
        if (block != null && ((JSONObject) block).has("general")) {
            Object general = ((JSONObject) block).opt("general");
            boolean good = general instanceof JSONObject && ((JSONObject) general).length() == 2
                    && GENERAL_FILE.equals(((JSONObject) general).opt("file"));
            Object messages = good ? ((JSONObject) general).opt("messages") : null;
            if (!good || !isInteger(messages) || ((Number) messages).longValue() <= 0) {
                throw new BundleException(manifestName + ": field adapter.general must be {\"file\": \"" + GENERAL_FILE
                        + "\", \"messages\": <a positive count>}, not " + Python.show(general));
            }
            if (!listed.has(GENERAL_FILE)) {
                throw new BundleException(manifestName + ": field files." + GENERAL_FILE + " is missing, but the adapter block names it");
            }
            return true;
        }
        if (listed.has(GENERAL_FILE)) {
            throw new BundleException(manifestName + ": field adapter.general is missing, but files lists " + GENERAL_FILE);
        }
        return false;
    }

    /** A JSON integer (not 1.0, not a boolean), as the Python loader's strict fields. */
    private static boolean isInteger(Object value) {
        return value instanceof Integer || value instanceof Long;
    }

    /**
     * The manifest's engine.strip_size (docs/engine.md §3): DEFAULT_STRIP_SIZE when there is no
     * engine block or no strip_size in it; anything but an integer from 1 to MAX_STRIP_SIZE is refused.
     */
    static int stripSize(JSONObject manifest, String manifestName) throws BundleException {
        Object engine = manifest.opt("engine");
        if (engine == null) return DEFAULT_STRIP_SIZE;
        if (!(engine instanceof JSONObject)) {
            throw new BundleException(manifestName + ": field engine must be an object with strip_size, not " + show(engine));
        }
        Object size = ((JSONObject) engine).opt("strip_size");
        if (size == null) return DEFAULT_STRIP_SIZE;
        boolean integer = size instanceof Integer || size instanceof Long;
        if (!integer || ((Number) size).longValue() < 1 || ((Number) size).longValue() > MAX_STRIP_SIZE) {
            throw new BundleException(manifestName + ": field engine.strip_size must be an integer from 1 to "
                    + MAX_STRIP_SIZE + ", not " + show(size));
        }
        return ((Number) size).intValue();
    }

    /** A manifest value as JSON writes it (a string quoted), for messages. */
    private static String show(Object value) {
        return value instanceof String ? JSONObject.quote((String) value) : String.valueOf(value);
    }

    /** The manifest's tokenizer block is this app's spec version and the same as vocab.json's
     *  (which Vocabulary.load has checked), as are the special ids. */
    private static void checkTokenizer(BundleFiles files, JSONObject manifest, String manifestName) throws BundleException {
        JSONObject tokenizer = manifest.optJSONObject("tokenizer");
        if (tokenizer == null) {
            throw new BundleException(manifestName + ": field tokenizer is missing");
        }
        Object spec = tokenizer.opt("spec_version");
        if (!Vocabulary.isInt(spec, Tokenizer.SPEC_VERSION)) {
            throw new BundleException(manifestName + ": field tokenizer.spec_version is " + spec
                    + ", but this app tokenizes by spec " + Tokenizer.SPEC_VERSION);
        }
        JSONObject vocab;
        try {
            vocab = new JSONObject(new String(Vocabulary.read(files, "vocab.json"), Bytes.UTF8));
        } catch (JSONException e) {
            throw new BundleException(files.describe("vocab.json") + ": not valid JSON (" + e.getMessage() + ")");
        }
        for (String field : new String[] {"tokenizer", "special_ids"}) {
            JSONObject mine = manifest.optJSONObject(field), theirs = vocab.optJSONObject(field);
            if (mine == null || theirs == null || !sameFields(mine, theirs)) {
                throw new BundleException(manifestName + ": field " + field + " differs from vocab.json's " + field);
            }
        }
    }

    private static boolean sameFields(JSONObject a, JSONObject b) {
        if (a.length() != b.length()) return false;
        java.util.Iterator<String> keys = a.keys();
        while (keys.hasNext()) {
            String key = keys.next();
            if (!b.has(key) || !String.valueOf(a.opt(key)).equals(String.valueOf(b.opt(key)))) return false;
        }
        return true;
    }
}

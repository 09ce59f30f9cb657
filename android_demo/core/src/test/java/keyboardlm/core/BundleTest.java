package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.Arrays;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading a bundle (the toy bundle the pytest exports): the good one, and each bad input
 * the issue lists, through Bundle.load (the message) and KeyboardSession (no crash, no
 * suggestions, the message shown).
 */
class BundleTest {
    @TempDir
    File dir;

    @BeforeEach
    void copyBundle() throws IOException {
        Fixtures.copyBundle(Fixtures.path("kblm.bundle"), dir);
    }

    private void write(String name, byte[] data) throws IOException {
        try (FileOutputStream out = new FileOutputStream(new File(dir, name))) {
            out.write(data);
        }
    }

    private byte[] read(String name) throws IOException {
        return Bytes.readAll(new FileInputStream(new File(dir, name)));
    }

    private JSONObject manifest() throws Exception {
        return new JSONObject(new String(read("manifest.json"), Bytes.UTF8));
    }

    /** Rewrites a file and records its new sha256 in the manifest (a consistent, re-signed edit). */
    private void rewrite(String name, byte[] data) throws Exception {
        write(name, data);
        JSONObject manifest = manifest();
        manifest.getJSONObject("files").getJSONObject(name).put("sha256", Bytes.sha256(data)).put("bytes", data.length);
        write("manifest.json", manifest.toString(2).getBytes(Bytes.UTF8));
    }

    private String failure() {
        BundleException e = assertThrows(BundleException.class, () -> Bundle.load(BundleFiles.directory(dir)));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> new ZeroModel(b.vocabularySize, b.stateSizes));
        assertFalse(session.ready());
        assertEquals("No suggestions: " + e.getMessage(), session.message());
        assertTrue(session.setText("see you at the sta").isEmpty() && session.strip().isEmpty());
        assertNull(session.tap(0));
        return e.getMessage();
    }

    private String path(String name) {
        return new File(dir, name).getPath();
    }

    @Test
    void goodBundle() throws Exception {
        Bundle bundle = Bundle.load(BundleFiles.directory(dir));
        JSONObject signature = manifest().getJSONObject("signature");
        assertEquals(signature.getInt("vocabulary_size"), bundle.vocabulary.size());
        assertEquals(bundle.vocabulary.size(), bundle.vocabularySize);
        assertArrayEquals(new String[] {"h0", "c0"}, bundle.stateNames);
        assertEquals(manifest().optString("sentence_context", "reset").equals("reset"), bundle.resetAtSentenceStart);
        assertArrayEquals(read("model.tflite"), bundle.model);
        assertEquals(Arrays.asList("<pad>", "<unk>", "<bos>", "<eos>"), bundle.vocabulary.tokens().subList(0, 4));
        assertEquals(Vocabulary.UNK_ID, bundle.vocabulary.id("no-such-word-in-the-toy-vocabulary"));
        ZeroModel[] model = {null};
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> model[0] = new ZeroModel(b.vocabularySize, b.stateSizes));
        assertTrue(session.ready(), String.valueOf(session.message()));
        assertEquals(3, session.setText("see you at the ").size());
        session.close();
        assertTrue(model[0].closed);
        assertFalse(session.ready());
        assertTrue(session.setText("see you at the station ").isEmpty());
    }

    @Test
    void missingFiles() throws Exception {
        assertTrue(new File(dir, "vocab.txt").delete());
        assertEquals(path("vocab.txt") + ": missing from the bundle", failure());
        assertTrue(new File(dir, "manifest.json").delete());
        assertEquals(path("manifest.json") + ": missing; not a keyboard-lm bundle", failure());
    }

    @Test
    void noBundleAtAll() {
        File nowhere = new File(dir, "nowhere");
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(nowhere), b -> new ZeroModel(1, new int[] {1}));
        assertFalse(session.ready());
        assertEquals("No suggestions: " + new File(nowhere, "manifest.json").getPath() + ": missing; not a keyboard-lm bundle",
                session.message());
    }

    @Test
    void tamperedFiles() throws Exception {
        byte[] model = read("model.tflite");
        model[model.length / 2] ^= 1;
        write("model.tflite", model);
        assertEquals(path("model.tflite") + ": sha256 does not match manifest.json (tampered or corrupt)", failure());
        copyBundle();
        write("vocab.txt", (new String(read("vocab.txt"), Bytes.UTF8) + "extra\n").getBytes(Bytes.UTF8));
        assertEquals(path("vocab.txt") + ": sha256 does not match manifest.json (tampered or corrupt)", failure());
    }

    @Test
    void otherFormatVersion() throws Exception {
        write("manifest.json", manifest().put("format_version", 2).toString().getBytes(Bytes.UTF8));
        assertEquals(path("manifest.json") + ": bundle format_version 2; this app reads format 1", failure());
        copyBundle();
        JSONObject vocab = new JSONObject(new String(read("vocab.json"), Bytes.UTF8));
        vocab.getJSONObject("tokenizer").put("spec_version", 2);
        rewrite("vocab.json", vocab.toString().getBytes(Bytes.UTF8));
        assertTrue(failure().startsWith(path("vocab.json") + ": field tokenizer.spec_version is 2"));
    }

    /** A fresh copy of the bundle whose manifest.json is edited by {@code edit}; the loader's message. */
    private String failureAfterEditing(ManifestEdit edit) throws Exception {
        copyBundle();
        JSONObject manifest = manifest();
        edit.apply(manifest);
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        return failure();
    }

    private interface ManifestEdit {
        void apply(JSONObject manifest) throws Exception;
    }

    /** A manifest without a field the loader needs says which field, not a misleading checksum or size. */
    @Test
    void manifestFieldsMissingOrDisagreeing() throws Exception {
        String manifestPath = path("manifest.json");
        assertEquals(manifestPath + ": field files is missing (it lists each file's sha256)",
                failureAfterEditing(m -> m.remove("files")));
        assertEquals(manifestPath + ": field signature is missing (the step model's inputs and outputs)",
                failureAfterEditing(m -> m.remove("signature")));
        assertEquals(manifestPath + ": field files.vocab.txt.sha256 is missing",
                failureAfterEditing(m -> m.getJSONObject("files").getJSONObject("vocab.txt").remove("sha256")));
        assertEquals(manifestPath + ": field tokenizer.spec_version is 7, but this app tokenizes by spec "
                + Tokenizer.SPEC_VERSION, failureAfterEditing(m -> m.getJSONObject("tokenizer").put("spec_version", 7)));
        assertEquals(manifestPath + ": field tokenizer differs from vocab.json's tokenizer", failureAfterEditing(
                m -> m.getJSONObject("tokenizer").put("lowercase", !m.getJSONObject("tokenizer").getBoolean("lowercase"))));
        assertEquals(manifestPath + ": field special_ids differs from vocab.json's special_ids",
                failureAfterEditing(m -> m.getJSONObject("special_ids").put("<unk>", 7)));
    }

    /** The manifest's engine.strip_size (docs/engine.md §3): absent means 3, a good value sizes the strip. */
    @Test
    void stripSizeFromTheManifest() throws Exception {
        assertEquals(3, manifest().getJSONObject("engine").getInt("strip_size"), "what kblm export writes by default");
        assertEquals(3, Bundle.load(BundleFiles.directory(dir)).stripSize);
        for (int size : new int[] {1, 5, Bundle.MAX_STRIP_SIZE}) {
            write("manifest.json", manifest().put("engine", new JSONObject().put("strip_size", size)).toString().getBytes(Bytes.UTF8));
            assertEquals(size, Bundle.load(BundleFiles.directory(dir)).stripSize);
            KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> new ZeroModel(b.vocabularySize, b.stateSizes));
            assertEquals(size, session.engine().stripSize());
            assertEquals(size, session.setText("see you at the ").size());
        }
        JSONObject older = manifest();
        older.remove("engine");  // a bundle exported before the field
        write("manifest.json", older.toString().getBytes(Bytes.UTF8));
        assertEquals(Bundle.DEFAULT_STRIP_SIZE, Bundle.load(BundleFiles.directory(dir)).stripSize);
        write("manifest.json", older.put("engine", new JSONObject()).toString().getBytes(Bytes.UTF8));
        assertEquals(Bundle.DEFAULT_STRIP_SIZE, Bundle.load(BundleFiles.directory(dir)).stripSize);
    }

    /** A bad engine.strip_size is refused in one line naming the field (the Python loader's words). */
    @Test
    void badStripSize() throws Exception {
        String field = path("manifest.json") + ": field engine.strip_size must be an integer from 1 to 10, not ";
        assertEquals(field + "0", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", 0))));
        assertEquals(field + "11", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", 11))));
        assertEquals(field + "\"3\"", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", "3"))));
        assertEquals(field + "2.5", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", 2.5))));
        assertEquals(field + "true", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", true))));
        assertEquals(field + "null", failureAfterEditing(m -> m.put("engine", new JSONObject().put("strip_size", JSONObject.NULL))));
        assertEquals(path("manifest.json") + ": field engine must be an object with strip_size, not [3]",
                failureAfterEditing(m -> m.put("engine", new JSONArray().put(3))));
    }

    @Test
    void notJson() throws Exception {
        write("manifest.json", "{not json".getBytes(Bytes.UTF8));
        assertTrue(failure().startsWith(path("manifest.json") + ": not valid JSON"));
    }

    /** A consistent vocabulary (its own checksums right) of another size than the model's output. */
    @Test
    void vocabularyDoesNotMatchTheModel() throws Exception {
        String text = new String(read("vocab.txt"), Bytes.UTF8);
        String shorter = text.substring(0, text.lastIndexOf('\n', text.length() - 2) + 1);
        int size = manifest().getJSONObject("signature").getInt("vocabulary_size");
        JSONObject vocab = new JSONObject(new String(read("vocab.json"), Bytes.UTF8));
        vocab.put("size", size - 1).put("sha256", Bytes.sha256(shorter.getBytes(Bytes.UTF8)));
        rewrite("vocab.txt", shorter.getBytes(Bytes.UTF8));
        rewrite("vocab.json", vocab.toString(2).getBytes(Bytes.UTF8));
        assertEquals(path("vocab.txt") + ": " + (size - 1) + " tokens, but the model outputs " + size, failure());
    }

    /** The manifest says one size, the model itself (what LiteRT reports) another. */
    @Test
    void modelOutputDoesNotMatchTheVocabulary() throws Exception {
        ZeroModel[] model = {null};
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> model[0] = new ZeroModel(b.vocabularySize + 1, b.stateSizes));
        assertFalse(session.ready());
        assertTrue(model[0].closed, "the model a failed session opened is released");
        int size = manifest().getJSONObject("signature").getInt("vocabulary_size");
        assertEquals("No suggestions: model.tflite: outputs " + (size + 1) + " log-probabilities, but vocab.txt has " + size + " tokens",
                session.message());
    }

    @Test
    void modelThatCannotOpenOrFailsLater() throws Exception {
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> {
            throw new IllegalArgumentException("not a valid flatbuffer");
        });
        assertEquals("No suggestions: the model could not be opened: java.lang.IllegalArgumentException: not a valid flatbuffer",
                session.message());
        final int[] calls = {0};
        session = KeyboardSession.open(BundleFiles.directory(dir), b -> new ZeroModel(b.vocabularySize, b.stateSizes) {
            @Override
            public Step step(int token, float[][] state) {
                if (++calls[0] > 3) throw new IllegalStateException("interpreter closed");
                return super.step(token, state);
            }
        });
        assertTrue(session.ready());
        assertTrue(session.setText("see you at the station ").isEmpty());
        assertFalse(session.ready());
        assertEquals("No suggestions: the model failed (java.lang.IllegalStateException: interpreter closed)", session.message());
        assertTrue(session.setText("more").isEmpty());
    }

    /** lexicon.tsv.gz holding {@code text} (gzip'd), its checksum and the manifest's lexicon block written (§16). */
    private void addLexicon(String text, int words) throws Exception {
        java.io.ByteArrayOutputStream raw = new java.io.ByteArrayOutputStream();
        try (java.util.zip.GZIPOutputStream gz = new java.util.zip.GZIPOutputStream(raw)) {
            gz.write(text.getBytes(Bytes.UTF8));
        }
        byte[] data = raw.toByteArray();
        write(Lexicon.FILE, data);
        JSONObject manifest = manifest();
        manifest.put("lexicon", new JSONObject().put("format_version", 1).put("words", words).put("sources", new JSONArray().put("train")));
        manifest.getJSONObject("files").put(Lexicon.FILE, new JSONObject().put("sha256", Bytes.sha256(data)).put("bytes", data.length));
        write("manifest.json", manifest.toString(2).getBytes(Bytes.UTF8));
    }

    @Test
    void lexiconLoads() throws Exception {
        addLexicon("Kasia\t3\nquokka\t2\nZanzibar\t5\n", 3);
        Lexicon lexicon = Bundle.load(BundleFiles.directory(dir)).lexicon;
        assertEquals(3, lexicon.size());
        assertEquals("Zanzibar", lexicon.word(2));
        assertTrue(lexicon.containsKey("zanzibar") && !lexicon.containsKey("Zanzibar"));
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> new ZeroModel(b.vocabularySize, b.stateSizes));
        assertTrue(session.ready(), String.valueOf(session.message()));
        assertNull(Bundle.load(BundleFiles.directory(copyAgain())).lexicon, "no block, no lexicon");
    }

    private File copyAgain() throws IOException {
        new File(dir, Lexicon.FILE).delete();
        copyBundle();
        return dir;
    }

    /** The refusals the Python loader makes (tests/export/test_bundle_errors.py), in its words. */
    @Test
    void badLexicons() throws Exception {
        String good = "Kasia\t3\nquokka\t2\nZanzibar\t5\n";
        addLexicon(good, 3);
        byte[] data = read(Lexicon.FILE);
        data[data.length / 2] ^= (byte) 0xFF;
        write(Lexicon.FILE, data);
        assertEquals(path(Lexicon.FILE) + ": sha256 does not match manifest.json (tampered or corrupt)", failure());
        copyAgain();
        addLexicon(good, 3);
        rewrite(Lexicon.FILE, "Kasia\t3\n".getBytes(Bytes.UTF8));  // not gzip, checksum right
        assertTrue(failure().startsWith(path(Lexicon.FILE) + ": not a gzip'd UTF-8 lexicon ("));
        copyAgain();
        addLexicon(good, 3);
        byte[] truncated = read(Lexicon.FILE);
        rewrite(Lexicon.FILE, Arrays.copyOf(truncated, truncated.length - 6));  // a corrupt gzip stream
        assertTrue(failure().startsWith(path(Lexicon.FILE) + ": not a gzip'd UTF-8 lexicon ("));
        copyAgain();
        addLexicon(good, 3);
        write("manifest.json", manifest().put("lexicon", manifest().getJSONObject("lexicon").put("format_version", 2))
                .toString().getBytes(Bytes.UTF8));
        assertEquals(path("manifest.json") + ": field lexicon.format_version must be 1 (the lexicon format this keyboard-lm "
                + "reads), not 2", failure());
        copyAgain();
        addLexicon(good, 3);
        assertTrue(new File(dir, Lexicon.FILE).delete());
        assertEquals(path(Lexicon.FILE) + ": missing from the bundle", failure());
        String[][] cases = {
            {"Kasia\t3\nquokka\t2\nZanzibar\t5\nzebu\t1\n", ": 4 words, but manifest.json field lexicon.words is 3"},
            {"Kasia\nquokka\t2\nZanzibar\t5\n", ": line 1: expected word<TAB>positive count, got 'Kasia'"},
            {"Kasia\t0\nquokka\t2\nZanzibar\t5\n", ": line 1: expected word<TAB>positive count, got a count of 0"},
            {"quokka\t2\nKasia\t3\nZanzibar\t5\n", ": line 2: 'Kasia' is out of order or repeats a word (the lines are sorted by word, each word once)"},
            {"Kasia\t3\nstation\t2\nZanzibar\t5\n", ": line 2: 'station' is in the vocabulary (the lexicon holds only words outside it)"},
            {"Kasia\t3\nquokka\t2\nZanzibar\t5", ": the last line has no newline (one word<TAB>count per line)"},
        };
        for (String[] bad : cases) {
            copyAgain();
            addLexicon(bad[0], 3);
            assertEquals(path(Lexicon.FILE) + bad[1], failure());
        }
        copyAgain();
        addLexicon(good, 3);
        JSONObject manifest = manifest();
        manifest.remove("lexicon");
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        assertEquals(path("manifest.json") + ": field lexicon is missing, but files lists lexicon.tsv.gz", failure());
        copyAgain();
        addLexicon(good, 3);
        manifest = manifest();
        manifest.getJSONObject("files").remove(Lexicon.FILE);
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        assertEquals(path("manifest.json") + ": field files.lexicon.tsv.gz is missing, but the manifest has a lexicon block", failure());
    }

    // -- the adapter's general sample (docs/engine.md §18.3) -----------------------------------

    private static final String GENERAL = Bundle.GENERAL_FILE;

    /** The adapter fixture's bundle-general (tests/android/make_adapter_fixture.py: a general sample numpy's side wrote) in {@code dir}. */
    private void useGeneralBundle() throws IOException {
        File[] old = dir.listFiles();
        if (old != null) for (File file : old) assertTrue(file.delete());
        Fixtures.copyBundle(new File(new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter"), "bundle-general"), dir);
    }

    private static java.util.List<String> expectedGeneral() throws Exception {
        File expected = new File(new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter"), "expected.json");
        return Fixtures.strings(Fixtures.json(expected).getJSONArray("general_messages"));
    }

    /** The general sample holding {@code data}, re-signed, with {@code messages} in the adapter block. */
    private void general(byte[] data, int messages) throws Exception {
        rewrite(GENERAL, data);
        JSONObject manifest = manifest();
        manifest.getJSONObject("adapter").getJSONObject("general").put("messages", messages);
        write("manifest.json", manifest.toString(2).getBytes(Bytes.UTF8));
    }

    @Test
    void generalSampleLoads() throws Exception {
        useGeneralBundle();
        Bundle bundle = Bundle.load(BundleFiles.directory(dir));
        java.util.List<String> expected = expectedGeneral();
        assertEquals(10, expected.size());
        assertTrue(expected.contains("ok 👍🏽 see you"));
        assertEquals(expected, bundle.adapterGeneralMessages(), "the lines the Python fixture wrote");
        assertEquals(expected.size(), manifest().getJSONObject("adapter").getJSONObject("general").getInt("messages"));
        KeyboardSession session = KeyboardSession.open(BundleFiles.directory(dir), b -> new ZeroModel(b.vocabularySize, b.stateSizes));
        assertTrue(session.ready(), String.valueOf(session.message()));
        // lines as keyboard_lm reads them: cut at every \n, a last piece after the final \n is no message,
        // an empty line is one (and a last line without \n is one too)
        general("one\n\nthree\r\n  four".getBytes(Bytes.UTF8), 4);
        assertEquals(Arrays.asList("one", "", "three\r", "  four"), Bundle.load(BundleFiles.directory(dir)).adapterGeneralMessages());
        general("\n".getBytes(Bytes.UTF8), 1);
        assertEquals(Arrays.asList(""), Bundle.load(BundleFiles.directory(dir)).adapterGeneralMessages());
        // none: an empty list (no guard)
        File plain = new File(new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter"), "bundle");
        assertTrue(Bundle.load(BundleFiles.directory(plain)).adapterGeneralMessages().isEmpty());
    }

    /** The refusals keyboard_lm/phone/bundle.py makes (tests/export/test_bundle_errors.py), in its words. */
    @Test
    void badGeneralSamples() throws Exception {
        String manifestPath = path("manifest.json");
        String shape = manifestPath + ": field adapter.general must be {\"file\": \"adapter-general.txt\", \"messages\": "
                + "<a positive count>}, not ";
        Object[][] fields = {
            {new JSONObject().put("file", "general.txt").put("messages", 10), "{\"file\": \"general.txt\", \"messages\": 10}"},
            {new JSONObject().put("file", GENERAL).put("messages", 0), "{\"file\": \"adapter-general.txt\", \"messages\": 0}"},
            {new JSONObject().put("file", GENERAL).put("messages", "10"), "{\"file\": \"adapter-general.txt\", \"messages\": \"10\"}"},
            {"10.0", "{\"file\": \"adapter-general.txt\", \"messages\": 10.0}"},  // written as text: org.json writes 10.0 as 10
            {new JSONObject().put("file", GENERAL), "{\"file\": \"adapter-general.txt\"}"},
            {new JSONObject().put("file", GENERAL).put("messages", 10).put("sha256", "x"),
                "{\"file\": \"adapter-general.txt\", \"messages\": 10, \"sha256\": \"x\"}"},
            {new JSONArray().put(GENERAL).put(10), "[\"adapter-general.txt\", 10]"},
            {JSONObject.NULL, "null"},
            {true, "true"},
        };
        for (Object[] c : fields) {
            useGeneralBundle();
            String edited = manifest().put("adapter", manifest().getJSONObject("adapter").put("general", c[0].equals("10.0")
                    ? new JSONObject().put("file", GENERAL).put("messages", "TEN") : c[0])).toString();
            write("manifest.json", edited.replace("\"TEN\"", "10.0").getBytes(Bytes.UTF8));
            String shown = (String) c[1];
            assertEquals(shape + (shown.length() <= 60 ? shown : shown.substring(0, 57) + "..."), failure());
        }
        // the block names the file if and only if files lists it
        useGeneralBundle();
        JSONObject manifest = manifest();
        manifest.getJSONObject("adapter").remove("general");
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        assertEquals(manifestPath + ": field adapter.general is missing, but files lists adapter-general.txt", failure());
        useGeneralBundle();
        manifest = manifest();
        manifest.getJSONObject("files").remove(GENERAL);
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        assertEquals(manifestPath + ": field files.adapter-general.txt is missing, but the adapter block names it", failure());
        useGeneralBundle();
        manifest = manifest();
        manifest.getJSONObject("files").getJSONObject(GENERAL).remove("sha256");
        write("manifest.json", manifest.toString().getBytes(Bytes.UTF8));
        assertEquals(manifestPath + ": field files.adapter-general.txt.sha256 is missing", failure());
        // the file: missing, tampered with, another count, not UTF-8
        useGeneralBundle();
        assertTrue(new File(dir, GENERAL).delete());
        assertEquals(path(GENERAL) + ": missing from the bundle", failure());
        useGeneralBundle();
        byte[] data = read(GENERAL);
        data[3] ^= 1;
        write(GENERAL, data);
        assertEquals(path(GENERAL) + ": sha256 does not match manifest.json (tampered or corrupt)", failure());
        useGeneralBundle();
        String text = new String(read(GENERAL), Bytes.UTF8);
        rewrite(GENERAL, text.substring(text.indexOf('\n') + 1).getBytes(Bytes.UTF8));  // re-signed, a line short
        assertEquals(path(GENERAL) + ": 9 messages, but manifest.json field adapter.general.messages is 10", failure());
        useGeneralBundle();
        rewrite(GENERAL, (text + "one more\n").getBytes(Bytes.UTF8));
        assertEquals(path(GENERAL) + ": 11 messages, but manifest.json field adapter.general.messages is 10", failure());
        useGeneralBundle();
        StringBuilder many = new StringBuilder();
        for (int i = 0; i < 1234; i++) many.append("line ").append(i).append('\n');
        rewrite(GENERAL, many.toString().getBytes(Bytes.UTF8));
        assertEquals(path(GENERAL) + ": 1,234 messages, but manifest.json field adapter.general.messages is 10", failure());
        useGeneralBundle();
        byte[] bad = "see you\nat th\u00e9 station\n".getBytes(Bytes.UTF8);
        bad[13] = (byte) 0xE9;  // the é's first byte, alone: "at th" then a Latin-1 é
        bad[14] = (byte) ' ';
        general(bad, 2);
        assertEquals(path(GENERAL) + ": not UTF-8 (byte 13)", failure());
    }
}

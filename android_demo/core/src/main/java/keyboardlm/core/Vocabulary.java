package keyboardlm.core;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Token <-> id from vocab.txt (line number = id) and vocab.json (format and tokenizer spec
 * versions, options, special ids, size, sha256 of vocab.txt), validated like
 * data_pipeline/vocab.py's Vocabulary.load. Ids 0-3 are pad, unk, bos, eos.
 */
public final class Vocabulary {
    public static final int FORMAT_VERSION = 1;
    public static final int PAD_ID = 0, UNK_ID = 1, BOS_ID = 2, EOS_ID = 3;
    public static final List<String> SPECIAL_TOKENS = Collections.unmodifiableList(
            Arrays.asList("<pad>", "<unk>", "<bos>", "<eos>"));

    private final List<String> tokens;
    private final Map<String, Integer> ids = new HashMap<>();
    private final boolean lowercase;

    Vocabulary(List<String> tokens, boolean lowercase) {
        this.tokens = Collections.unmodifiableList(tokens);
        this.lowercase = lowercase;
        for (int i = 0; i < tokens.size(); i++) ids.put(tokens.get(i), i);
    }

    public int size() {
        return tokens.size();
    }

    public String token(int id) {
        return tokens.get(id);
    }

    public List<String> tokens() {
        return tokens;
    }

    /** The id of {@code token}, or unk. */
    public int id(String token) {
        Integer id = ids.get(token);
        return id == null ? UNK_ID : id;
    }

    /** True if {@code token} is a vocabulary token (the specials included). */
    public boolean contains(String token) {
        return ids.containsKey(token);
    }

    /** The tokenizer option this vocabulary was built with (fold case, on by default). */
    public boolean lowercase() {
        return lowercase;
    }

    /** Reads vocab.txt and vocab.json from {@code files}; any mismatch is a one-line BundleException. */
    public static Vocabulary load(BundleFiles files) throws BundleException {
        String metaName = files.describe("vocab.json"), textName = files.describe("vocab.txt");
        byte[] metaBytes = read(files, "vocab.json"), data = read(files, "vocab.txt");
        JSONObject meta;
        try {
            meta = new JSONObject(new String(metaBytes, Bytes.UTF8));
        } catch (JSONException e) {
            throw new BundleException(metaName + ": not valid JSON (" + e.getMessage() + ")");
        }
        if (!isInt(meta.opt("format_version"), FORMAT_VERSION)) {
            throw new BundleException(metaName + ": format_version " + meta.opt("format_version") + ", expected " + FORMAT_VERSION);
        }
        JSONObject tokenizer = meta.optJSONObject("tokenizer");
        Object spec = tokenizer == null ? null : tokenizer.opt("spec_version");
        if (!isInt(spec, Tokenizer.SPEC_VERSION)) {
            throw new BundleException(metaName + ": field tokenizer.spec_version is " + spec + ", but this app tokenizes by spec "
                    + Tokenizer.SPEC_VERSION + "; rebuild the vocabulary");
        }
        boolean lowercase = true;
        for (Iterator<String> keys = tokenizer.keys(); keys.hasNext(); ) {
            String key = keys.next();
            if (key.equals("lowercase") && tokenizer.opt(key) instanceof Boolean) {
                lowercase = tokenizer.optBoolean(key);
            } else if (!key.equals("spec_version")) {
                throw new BundleException(metaName + ": unknown or invalid tokenizer option " + key);
            }
        }
        if (!Bytes.sha256(data).equals(meta.optString("sha256"))) {
            throw new BundleException(textName + ": sha256 does not match field sha256 of vocab.json (edited or corrupt)");
        }
        String[] lines = new String(data, Bytes.UTF8).split("\n", -1);
        List<String> tokens = Arrays.asList(lines).subList(0, lines.length - 1);  // Python: split("\n")[:-1]
        if (tokens.size() < SPECIAL_TOKENS.size() || !tokens.subList(0, SPECIAL_TOKENS.size()).equals(SPECIAL_TOKENS)) {
            throw new BundleException(textName + ": the first lines must be " + SPECIAL_TOKENS);
        }
        JSONObject special = meta.optJSONObject("special_ids");
        boolean specialOk = special != null && special.length() == SPECIAL_TOKENS.size();
        for (int i = 0; specialOk && i < SPECIAL_TOKENS.size(); i++) specialOk = isInt(special.opt(SPECIAL_TOKENS.get(i)), i);
        if (!specialOk) {
            throw new BundleException(metaName + ": field special_ids must be {<pad>: 0, <unk>: 1, <bos>: 2, <eos>: 3}");
        }
        int distinct = new HashSet<>(tokens).size();
        if (!isInt(meta.opt("size"), tokens.size()) || distinct != tokens.size()) {
            throw new BundleException(textName + ": " + tokens.size() + " lines, " + distinct + " distinct, but field size of vocab.json is "
                    + meta.opt("size"));
        }
        return new Vocabulary(tokens, lowercase);
    }

    static byte[] read(BundleFiles files, String name) throws BundleException {
        try {
            return files.read(name);
        } catch (FileNotFoundException e) {
            throw new BundleException(files.describe(name) + ": missing from the bundle");
        } catch (IOException e) {
            throw new BundleException(files.describe(name) + ": unreadable (" + e.getMessage() + ")");
        }
    }

    /** A JSON number equal to the integer {@code expected} (not a string, not a boolean). */
    static boolean isInt(Object value, int expected) {
        return value instanceof Number && ((Number) value).doubleValue() == expected;
    }
}

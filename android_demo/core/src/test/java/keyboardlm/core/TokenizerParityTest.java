package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The Java tokenizer against the Python twin's answers (android_demo/core/fixtures/tokenizer.json). */
class TokenizerParityTest {
    private static JSONObject fixture;
    private static final Tokenizer TOKENIZER = Tokenizer.standard();

    @BeforeAll
    static void load() throws Exception {
        fixture = Fixtures.json(Fixtures.path("kblm.tokenizerFixture"));
        assertEquals(Tokenizer.SPEC_VERSION, fixture.getInt("spec_version"));
    }

    @Test
    void everyCaseMatchesThePythonTwin() throws Exception {
        JSONArray cases = fixture.getJSONArray("cases");
        assertTrue(cases.length() > 1000, "too few cases: " + cases.length());
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < cases.length(); i++) {
            JSONObject c = cases.getJSONObject(i);
            String text = c.getString("text");
            List<String> tokens = TOKENIZER.tokenize(text, true);
            check(failures, text, "tokens", Fixtures.strings(c.getJSONArray("tokens")), tokens);
            check(failures, text, "cased", Fixtures.strings(c.getJSONArray("cased")), TOKENIZER.tokenize(text, false));
            check(failures, text, "normalized", c.getString("normalized"), TOKENIZER.normalize(text, true));
            check(failures, text, "lowercase", c.getString("lowercase"), TOKENIZER.lowercase(text));
            check(failures, text, "ends_with_space", c.getBoolean("ends_with_space"), Tokenizer.endsWithSpace(text));
            check(failures, text, "text_is_word", c.getBoolean("text_is_word"), TOKENIZER.isWord(text));
            List<Boolean> words = new ArrayList<>();
            for (String token : tokens) words.add(TOKENIZER.isWord(token));
            List<Boolean> expectedWords = new ArrayList<>();
            JSONArray isWord = c.getJSONArray("is_word");
            for (int k = 0; k < isWord.length(); k++) expectedWords.add(isWord.getBoolean(k));
            check(failures, text, "is_word", expectedWords, words);
            List<String> spans = new ArrayList<>();
            for (int[] span : TOKENIZER.tokenSpans(text)) {  // UTF-16 -> code point indices
                spans.add(text.codePointCount(0, span[0]) + ":" + text.codePointCount(0, span[1]));
            }
            List<String> expectedSpans = new ArrayList<>();
            JSONArray spanJson = c.getJSONArray("spans");
            for (int k = 0; k < spanJson.length(); k++) {
                expectedSpans.add(spanJson.getJSONArray(k).getInt(0) + ":" + spanJson.getJSONArray(k).getInt(1));
            }
            check(failures, text, "spans", expectedSpans, spans);
        }
        assertTrue(failures.isEmpty(), failures.size() + " mismatches, first ones:\n"
                + String.join("\n", failures.subList(0, Math.min(10, failures.size()))));
    }

    private static void check(List<String> failures, String text, String what, Object expected, Object actual) {
        if (!expected.equals(actual)) {
            String shown = text.length() > 80 ? text.substring(0, 80) + "..." : text;
            failures.add(what + " of " + escape(shown) + ": Python " + escape(String.valueOf(expected))
                    + ", Java " + escape(String.valueOf(actual)));
        }
    }

    /** Every code point alone and between two letters, lowercased and cased, by block digests. */
    @Test
    void everyCodePointMatchesThePythonTwin() throws Exception {
        JSONArray blocks = fixture.getJSONArray("code_point_blocks");
        List<String> failures = new ArrayList<>();
        for (int b = 0; b < blocks.length(); b++) {
            JSONObject block = blocks.getJSONObject(b);
            int start = block.getInt("start");
            int end = b + 1 < blocks.length() ? blocks.getJSONObject(b + 1).getInt("start") : 0x110000;
            for (String template : new String[] {"{}", "A{}b"}) {
                for (boolean lowercase : new boolean[] {true, false}) {
                    String key = template + "|" + (lowercase ? "lower" : "cased");
                    MessageDigest digest = MessageDigest.getInstance("SHA-256");
                    for (int cp = start; cp < end; cp++) {
                        String c = new String(Character.toChars(cp));
                        String text = template.equals("{}") ? c : "A" + c + "b";
                        digest.update(utf8Any(String.join("\u001f", TOKENIZER.tokenize(text, lowercase))));
                        digest.update((byte) '\n');
                    }
                    String hex = hex(digest.digest()).substring(0, 16);
                    if (!hex.equals(block.getString(key))) {
                        failures.add(String.format("U+%04X-U+%04X %s", start, end - 1, key));
                    }
                }
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " code point blocks differ: " + failures);
    }

    /** UTF-8 with lone surrogates encoded as 3 bytes like any code point (Python's surrogatepass). */
    private static byte[] utf8Any(String text) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int cp : CodePoints.of(text)) {
            if (cp < 0x80) {
                out.write(cp);
            } else if (cp < 0x800) {
                out.write(0xC0 | cp >> 6);
                out.write(0x80 | cp & 0x3F);
            } else if (cp < 0x10000) {
                out.write(0xE0 | cp >> 12);
                out.write(0x80 | cp >> 6 & 0x3F);
                out.write(0x80 | cp & 0x3F);
            } else {
                out.write(0xF0 | cp >> 18);
                out.write(0x80 | cp >> 12 & 0x3F);
                out.write(0x80 | cp >> 6 & 0x3F);
                out.write(0x80 | cp & 0x3F);
            }
        }
        return out.toByteArray();
    }

    private static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) out.append(String.format("%02x", b & 0xFF));
        return out.toString();
    }

    private static String escape(String text) {
        StringBuilder out = new StringBuilder();
        for (int cp : CodePoints.of(text)) {
            if (cp >= 0x20 && cp < 0x7F) out.appendCodePoint(cp);
            else out.append(String.format("\\u{%X}", cp));
        }
        return out.toString();
    }

    @Test
    void sentenceEndsAreTheSpecs() {
        assertEquals(new java.util.HashSet<>(java.util.Arrays.asList(".", "!", "?")), Tokenizer.SENTENCE_ENDS);
    }
}

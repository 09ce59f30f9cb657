package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The user's words on their own (docs/engine.md §17; the engine's use of them is replayed from
 * golden traces in EngineReplayTest): what is never learned, list/add/remove with blocking, the
 * file (the Python side's format), and a corrupt file kept aside.
 */
class UserWordsTest {
    @TempDir
    File dir;

    private void write(File file, String text) throws IOException {
        try (FileOutputStream out = new FileOutputStream(file)) {
            out.write(text.getBytes(Bytes.UTF8));
        }
    }

    @Test
    void wordsThatAreNeverLearned() {
        StringBuilder longWord = new StringBuilder();
        for (int i = 0; i < 65; i++) longWord.append('x');
        for (String word : new String[] {longWord.toString(), "1234567", "12.5", "ab\u200bcd", "ab\u0007cd", ""}) {
            assertFalse(UserWords.learnable(word), word);
            UserWords words = new UserWords();
            for (int i = 0; i < 3; i++) assertFalse(words.commit("<bos>", word));
            assertTrue(words.words().isEmpty());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> words.add(word));
            assertTrue(e.getMessage().contains("not a word the keyboard can learn"), e.getMessage());
        }
        assertTrue(UserWords.learnable(longWord.substring(1)) && UserWords.learnable("R2D2") && UserWords.learnable("Zoë"));
    }

    @Test
    void learnRemoveBlockAdd() {
        UserWords words = new UserWords();
        assertTrue(words.commit("you", "Kasia"));
        assertEquals(0, words.size());
        assertTrue(words.commit("you", "kasia"));
        assertEquals("[kasia 2]", words.words().toString());
        words.undo();
        assertEquals("[]", words.words().toString());
        assertTrue(words.commit("call", "Kasia"));
        assertEquals("[Kasia 2]", words.words().toString());
        assertTrue(words.remove("KASIA"));
        assertFalse(words.commit("you", "Kasia"), "blocked");
        assertEquals("[kasia]", words.blocked().toString());
        words.add("Kasia");
        assertEquals("[Kasia 2]", words.words().toString());
        assertTrue(words.blocked().isEmpty());
    }

    @Test
    void theFileIsThePythonSidesFormat() throws Exception {
        UserWords words = new UserWords();
        for (String word : new String[] {"Kasia", "Kasia", "Zoë"}) words.commit("you", word);
        words.remove("Spam");
        String text = "{\"format_version\": 1, \"learn_after\": 2, \"words\": [[\"Kasia\", 2], [\"Zoë\", 1]], "
                + "\"blocked\": [\"spam\"], \"pairs\": [[\"you\", \"Kasia\", 2], [\"you\", \"Zoë\", 1]]}\n";
        assertEquals(text, words.toJsonText());
        File file = UserWords.wordsPath(new File(dir, "cache.json"));
        assertEquals("cache.words.json", file.getName());
        words.save(file);
        assertEquals(text, new String(Bytes.readAll(new FileInputStream(file)), Bytes.UTF8));
        UserWords again = UserWords.load(file);
        assertEquals(text, again.toJsonText());
        assertEquals("[Kasia 2]", again.words().toString());
        StringBuilder escaped = new StringBuilder();
        Python.jsonString(escaped, "a\"b\\c\u0001é/");
        assertEquals("\"a\\\"b\\\\c\\u0001é/\"", escaped.toString());
    }

    @Test
    void aCorruptFileIsKeptAside() throws Exception {
        File file = UserWords.wordsPath(new File(dir, "cache.json"));
        List<String> said = new ArrayList<>();
        write(file, "{\"format_version\": 1, \"words\": [[\"Kasia\", \"two\"]]}");
        UserWords words = UserWords.loadOrStart(file, said::add);
        assertTrue(words.words().isEmpty());
        assertEquals(1, said.size());
        assertTrue(said.get(0).contains("field words[0]") && said.get(0).contains("starting with no learned words"), said.get(0));
        assertFalse(said.get(0).contains("\n"));
        assertFalse(file.exists());
        assertTrue(new String(Bytes.readAll(new FileInputStream(new File(dir, "cache.words.json.bad"))), Bytes.UTF8)
                .startsWith("{\"format_version\""));
        write(file, "{not json");
        UserWords.loadOrStart(file, said::add);
        assertTrue(new File(dir, "cache.words.json.bad.1").exists());
        assertEquals(2, said.size());
        for (String bad : new String[] {"[]", "{\"format_version\": 2}", "{\"format_version\": 1, \"words\": 3}",
                                        "{\"format_version\": 1, \"words\": [[\"Kasia\", true]]}", "{\"format_version\": 1} x",
                                        "{\"format_version\": 1, \"pairs\": [[\"you\", \"Bartek\", 1]]}",
                                        "{\"format_version\": 1, \"learn_after\": 0}"}) {
            write(file, bad);
            assertTrue(UserWords.loadOrStart(file, said::add).words().isEmpty());
            assertFalse(file.exists(), bad);
        }
        assertEquals(9, said.size());
        assertTrue(UserWords.loadOrStart(file, said::add).words().isEmpty(), "no file: none, nothing said");
        assertEquals(9, said.size());
    }
}

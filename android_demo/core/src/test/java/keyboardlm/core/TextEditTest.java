package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TextEditTest {
    @Test
    void replacesThePrefix() {
        TextEdit edit = TextEdit.between("see you at the sta", "see you at the station ");
        assertEquals(0, edit.delete);
        assertEquals("tion ", edit.insert);
        edit = TextEdit.between("see you at the STA", "see you at the STATION ");
        assertEquals("TION ", edit.insert);
        edit = TextEdit.between("Hi.", "Hi. See ");
        assertEquals(0, edit.delete);
        assertEquals(" See ", edit.insert);
        edit = TextEdit.between("i don’t be la", "i don’t be late ");
        assertEquals("te ", edit.insert);
        edit = TextEdit.between("ok \u0065\u0301", "ok \u00e9t\u00e9 ");  // decomposed typed, composed word
        assertEquals(2, edit.delete);
        assertEquals("\u00e9t\u00e9 ", edit.insert);
    }

    @Test
    void neverSplitsASurrogatePair() {
        TextEdit edit = TextEdit.between("a\ud83d\udc4d", "a\ud83d\udc4e");  // thumbs up -> thumbs down
        assertEquals(2, edit.delete);
        assertEquals("\ud83d\udc4e", edit.insert);
    }
}

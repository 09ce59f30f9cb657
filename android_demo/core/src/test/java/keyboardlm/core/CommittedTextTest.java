package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.json.JSONObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed text the training reads (docs/engine.md §18.3): the buffer, its word count for
 * the schedule, and what KeyboardController records -- finished messages in fields that take
 * suggestions, never a private field's (§11).
 */
class CommittedTextTest {
    @TempDir
    File dir;

    private static final int TEXT = InputTypes.TYPE_CLASS_TEXT;
    private static final int SEND = 4;  // EditorInfo.IME_ACTION_SEND
    private static final int[][] PRIVATE_FIELDS = withNumberField(ControllerTest.PRIVATE_FIELDS);  // and a field that is not text

    private static int[][] withNumberField(int[][] fields) {
        int[][] out = java.util.Arrays.copyOf(fields, fields.length + 1);
        out[fields.length] = new int[] {InputTypes.TYPE_CLASS_NUMBER, 0};
        return out;
    }

    @Test
    void countsWordsAndKeepsTheNewest() throws Exception {
        assertEquals(0, CommittedText.words(""));
        assertEquals(0, CommittedText.words(" !! 👍🏽 … "));
        assertEquals(4, CommittedText.words("see you at 5pm!"));
        assertEquals(3, CommittedText.words("don't\tstop\u00a0now ."));
        CommittedText text = new CommittedText(40);
        text.add("see you at the station");  // 22 chars, 5 words
        text.add("   ");  // no word: nothing
        text.add("i think so");  // 10 chars
        assertEquals(Arrays.asList("see you at the station", "i think so"), text.messages());
        assertEquals(8, text.newWords());
        text.add("we met at the park");  // 18 chars: 50 > 40, the oldest goes
        assertEquals(Arrays.asList("i think so", "we met at the park"), text.messages());
        assertEquals(13, text.newWords(), "words count as committed, kept or not");
        assertEquals(Arrays.asList("i think so", "we met at the park"), text.startRun());
        assertEquals(0, text.newWords());
        text.add("x".repeat(41));  // longer than the whole buffer: dropped
        assertEquals(2, text.messages().size());

        CommittedText back = CommittedText.fromJson(new JSONObject(text.toJson().toString()), "committed.json");
        assertEquals(text.messages(), back.messages());
        assertEquals(0, back.newWords());
        BundleException e = assertThrows(BundleException.class,
                () -> CommittedText.fromJson(new JSONObject("{\"format_version\": 2}"), "committed.json"));
        assertEquals("committed.json: field format_version: expected 1, got 2", e.getMessage());
        e = assertThrows(BundleException.class, () -> CommittedText.fromJson(
                new JSONObject("{\"format_version\": 1, \"new_words\": 3, \"messages\": [\"a\", 4]}"), "committed.json"));
        assertEquals("committed.json: field messages[1]: expected a string", e.getMessage());
        text.clear();
        assertTrue(text.messages().isEmpty());
    }

    @Test
    void aRunThatEndsUncountsOnlyTheWordsItSaw() {
        CommittedText text = new CommittedText();
        text.add("see you at the station");
        long counted = text.newWords();
        text.add("i think so");  // typed while the run trains
        text.endRun(counted);
        assertEquals(3, text.newWords());
        text.clear();  // the user cleared it during a run: never below 0
        text.endRun(counted);
        assertEquals(0, text.newWords());
    }

    @Test
    void savesWholeAndLoadsBack() throws Exception {
        File path = new File(dir, "committed.json");
        List<String> warnings = new ArrayList<>();
        CommittedText text = CommittedText.loadOrStart(path, warnings::add);
        assertTrue(text.messages().isEmpty() && warnings.isEmpty(), "no file: an empty buffer, nothing said");
        text.add("see you at the station");
        text.add("i think the train is late");
        assertTrue(text.save(path));
        assertFalse(text.save(path), "unchanged: not written again");
        CommittedText back = CommittedText.loadOrStart(path, warnings::add);
        assertEquals(text.messages(), back.messages());
        assertEquals(11, back.newWords());
        assertFalse(back.save(path), "as loaded: not written");
        back.endRun(11);
        assertTrue(back.save(path));
        assertEquals(0, CommittedText.load(path).newWords());
        assertEquals(Collections.singletonList("committed.json"), Arrays.asList(dir.list()), "no temp file left");

        try (FileOutputStream out = new FileOutputStream(path)) {
            out.write("{\"format_version\": 1, \"new_words\": ".getBytes(Bytes.UTF8));  // cut short
        }
        CommittedText fresh = CommittedText.loadOrStart(path, warnings::add);
        assertTrue(fresh.messages().isEmpty());
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).startsWith(path + ": not a readable committed-text file (")
                && warnings.get(0).endsWith("; starting with no committed text"), warnings.get(0));
        fresh.add("hello there");
        assertTrue(fresh.save(path), "the next save replaces the bad file");
        assertEquals(Collections.singletonList("hello there"),
                CommittedText.fromJson(new JSONObject(new String(Bytes.readAll(new FileInputStream(path)), Bytes.UTF8)), "x").messages());
        BundleException e = assertThrows(BundleException.class, () -> CommittedText.load(new File(dir, "none.json")));
        assertTrue(e.getMessage().startsWith(new File(dir, "none.json") + ": not a readable committed-text file"), e.getMessage());
    }

    // -- the controller ------------------------------------------------------------------------

    private final ControllerTest.QueueExecutor worker = new ControllerTest.QueueExecutor(), ui = new ControllerTest.QueueExecutor();

    private KeyboardController controller(ControllerTest.RecordingEditor editor, CommittedText committed) {
        File bundle = Fixtures.path("kblm.bundle");
        return new KeyboardController(editor, BundleSource.of(BundleFiles.directory(bundle)),
                b -> new ZeroModel(b.vocabularySize, b.stateSizes), null, null, committed, worker, ui);
    }

    private void settle() {
        while (worker.runAll() + ui.runAll() > 0) {
            // until both are idle
        }
    }

    private static void type(KeyboardController controller, ControllerTest.RecordingEditor editor, String keys) {
        for (char c : keys.toCharArray()) {
            if (c == '\b') controller.onBackspace();
            else controller.onKey(String.valueOf(c));
            editor.report(controller);
        }
    }

    @Test
    void theControllerRecordsFinishedMessages() {
        CommittedText committed = new CommittedText();
        ControllerTest.RecordingEditor editor = new ControllerTest.RecordingEditor("");
        KeyboardController controller = controller(editor, committed);
        controller.onStartInput(TEXT, SEND);
        type(controller, editor, "see you at the station");
        settle();
        controller.onEnter();  // send
        assertEquals(Collections.singletonList("See you at the station"), committed.messages());
        controller.onFinishInput();  // the same message is not recorded twice
        assertEquals(1, committed.messages().size());

        // the field loses the keyboard with a message in it
        editor.set("", 0);
        controller.onStartInput(TEXT, 0);
        type(controller, editor, "i think the train is late");
        controller.onFinishInput();
        assertEquals(Arrays.asList("See you at the station", "I think the train is late"), committed.messages());

        // a chat app's own send button empties the field under the controller: that message is not
        // seen (an emptied field looks like a cursor moved to the start); what is typed after is
        editor.set("", 0);
        controller.onStartInput(TEXT, 0);
        type(controller, editor, "we met at the park");
        editor.set("", 0);
        editor.report(controller);
        type(controller, editor, "ok");
        controller.onFinishInput();
        assertEquals(Arrays.asList("See you at the station", "I think the train is late", "Ok"), committed.messages());

        // the user selects what they typed and deletes it: not a message
        editor.set("", 0);
        controller.onStartInput(TEXT, 0);
        type(controller, editor, "never mind");
        editor.selStart = 0;
        editor.report(controller);
        controller.onBackspace();
        editor.report(controller);
        controller.onFinishInput();
        assertEquals(3, committed.messages().size());

        // a field opened with text and left untouched: nothing typed, nothing recorded
        editor.set("an old draft", 12);
        controller.onStartInput(TEXT, 0);
        controller.onFinishInput();
        assertEquals(3, committed.messages().size());
        assertEquals(CommittedText.words("See you at the station I think the train is late Ok"), committed.newWords());
        settle();
    }

    @Test
    void nothingFromPrivateFields() {
        CommittedText committed = new CommittedText();
        ControllerTest.RecordingEditor editor = new ControllerTest.RecordingEditor("");
        KeyboardController controller = controller(editor, committed);
        for (int[] field : PRIVATE_FIELDS) {
            assertFalse(InputTypes.suggests(field[0], field[1]));
            editor.set("", 0);
            controller.onStartInput(field[0], field[1] | SEND);
            type(controller, editor, "secret words here");
            controller.onEnter();
            type(controller, editor, " more");
            editor.set("", 0);
            editor.report(controller);  // emptied by the app
            type(controller, editor, "again");
            controller.onFinishInput();
            settle();
        }
        assertTrue(committed.messages().isEmpty(), committed.messages().toString());
        assertEquals(0, committed.newWords());
        // the next ordinary field is recorded again
        editor.set("", 0);
        controller.onStartInput(TEXT, 0);
        type(controller, editor, "hello");
        controller.onFinishInput();
        assertEquals(Collections.singletonList("Hello"), committed.messages());
    }
}

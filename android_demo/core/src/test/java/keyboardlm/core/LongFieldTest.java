package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * A 100,000-character field costs what a short one does: a reset steps the model only on the
 * window (the last CONTEXT_CHARS code points), a keystroke at its end only on the new ids.
 * (The golden traces hold the ids and strips to the Python engine's on long fields.)
 */
class LongFieldTest {
    /** Counts the model's steps. */
    private static final class CountingModel extends ZeroModel {
        int steps;

        CountingModel(int size, int[] stateSizes) {
            super(size, stateSizes);
        }

        @Override
        public Step step(int token, float[][] state) {
            steps++;
            return super.step(token, state);
        }
    }

    @Test
    void keystrokesAndResetsDoNotGrowWithTheField() throws Exception {
        Bundle bundle = Bundle.load(BundleFiles.directory(Fixtures.path("kblm.bundle")));
        CountingModel model = new CountingModel(bundle.vocabulary.size(), bundle.stateSizes);
        KeyboardEngine engine = new KeyboardEngine(bundle, model);
        StringBuilder field = new StringBuilder();
        while (field.length() < 100_000) field.append("see you at the station tomorrow . i think 👍🏽 the train is late ");
        String text = field.toString();
        model.steps = 0;
        engine.reset(text);
        assertTrue(model.steps <= KeyboardEngine.CONTEXT_CHARS / 2, "a reset stepped " + model.steps + " ids");
        assertTrue(engine.base() >= text.length() - 2 * KeyboardEngine.CONTEXT_CHARS, "base " + engine.base());
        assertTrue(text.substring(engine.base() - 2, engine.base()).equals(". "), "the window starts a sentence");
        int base = engine.base();
        int worst = 0;
        for (char c : "we met at the park tonight . see you soon ".toCharArray()) {
            model.steps = 0;
            engine.type(String.valueOf(c));
            engine.strip();
            worst = Math.max(worst, model.steps);
            model.steps = 0;
            engine.backspace();
            engine.type(String.valueOf(c));
            worst = Math.max(worst, model.steps);
        }
        assertTrue(worst <= 4, "a keystroke stepped " + worst + " ids");
        assertEquals(base, engine.base(), "typing on keeps the window's base");
    }
}

package keyboardlm.core;

import static keyboardlm.core.TrainingSchedule.Decision.KEYBOARD_OPEN;
import static keyboardlm.core.TrainingSchedule.Decision.NOT_CHARGING;
import static keyboardlm.core.TrainingSchedule.Decision.TOO_FEW_WORDS;
import static keyboardlm.core.TrainingSchedule.Decision.TOO_SOON;
import static keyboardlm.core.TrainingSchedule.Decision.TRAIN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** When the phone trains (docs/engine.md §18.3): each condition on its boundary. */
class TrainingScheduleTest {
    private static final long HOUR = 60L * 60 * 1000;
    private static final long NOW = 1_700_000_000_000L;

    private static TrainingSchedule.Decision decide(long words, boolean open, boolean charging, long lastRun) {
        return TrainingSchedule.decide(words, open, charging, NOW, lastRun);
    }

    @Test
    void newWords() {
        assertEquals(TOO_FEW_WORDS, decide(999, false, true, TrainingSchedule.NEVER));
        assertEquals(TRAIN, decide(1000, false, true, TrainingSchedule.NEVER));
        assertEquals(TRAIN, decide(250_000, false, true, TrainingSchedule.NEVER));
        assertEquals(TOO_FEW_WORDS, decide(0, true, false, NOW), "the first condition that fails is said");
    }

    @Test
    void idleAndCharging() {
        assertEquals(KEYBOARD_OPEN, decide(1000, true, true, TrainingSchedule.NEVER));
        assertEquals(NOT_CHARGING, decide(1000, false, false, TrainingSchedule.NEVER));
        assertEquals(KEYBOARD_OPEN, decide(1000, true, false, TrainingSchedule.NEVER));
    }

    @Test
    void twentyHoursSinceTheLastRun() {
        assertEquals(20 * HOUR, TrainingSchedule.MIN_INTERVAL_MILLIS);
        assertEquals(TOO_SOON, decide(1000, false, true, NOW - 20 * HOUR + 1));
        assertEquals(TRAIN, decide(1000, false, true, NOW - 20 * HOUR));
        assertEquals(TOO_SOON, decide(1000, false, true, NOW));
        assertEquals(TRAIN, decide(1000, false, true, NOW - 72 * HOUR));
        assertEquals(TRAIN, decide(1000, false, true, NOW + HOUR), "a last run in the future: the clock was set back");
        assertTrue(TrainingSchedule.due(1000, false, true, NOW, TrainingSchedule.NEVER));
        assertFalse(TrainingSchedule.due(1000, false, true, NOW, NOW - HOUR));
    }
}

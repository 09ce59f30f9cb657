package keyboardlm.core;

/**
 * When the phone adapts the model to the user (docs/engine.md §18.3: "the phone at night"): at
 * least {@link #MIN_NEW_WORDS} words committed since the last run ({@link CommittedText#newWords}),
 * no keyboard session open (the device is idle for the keyboard), the phone charging, and at least
 * {@link #MIN_INTERVAL_MILLIS} since the last run. A pure function of those inputs and the clock
 * value passed in; the app asks it from its background job and, when it says {@link
 * Decision#TRAIN}, runs {@link AdapterTraining} and records the run's time whatever the outcome.
 */
public final class TrainingSchedule {
    public static final long MIN_NEW_WORDS = 1000;
    public static final long MIN_INTERVAL_MILLIS = 20L * 60 * 60 * 1000;
    /** The last run's time when there has been none. */
    public static final long NEVER = Long.MIN_VALUE;

    /** Train now, or the first condition that says not yet (checked in this order). */
    public enum Decision {
        TRAIN, TOO_FEW_WORDS, KEYBOARD_OPEN, NOT_CHARGING, TOO_SOON
    }

    private TrainingSchedule() {}

    /**
     * {@code newWords}: words committed since the last run; {@code keyboardOpen}: a keyboard session
     * (an input view) is open; {@code charging}; {@code nowMillis} and {@code lastRunMillis}: wall-clock
     * times in milliseconds ({@link #NEVER}: no run yet). A last run later than now (the clock was
     * set back) does not hold training off: that time says nothing any more.
     */
    public static Decision decide(long newWords, boolean keyboardOpen, boolean charging, long nowMillis, long lastRunMillis) {
        if (newWords < MIN_NEW_WORDS) return Decision.TOO_FEW_WORDS;
        if (keyboardOpen) return Decision.KEYBOARD_OPEN;
        if (!charging) return Decision.NOT_CHARGING;
        if (lastRunMillis != NEVER && lastRunMillis <= nowMillis && nowMillis - lastRunMillis < MIN_INTERVAL_MILLIS) {
            return Decision.TOO_SOON;
        }
        return Decision.TRAIN;
    }

    public static boolean due(long newWords, boolean keyboardOpen, boolean charging, long nowMillis, long lastRunMillis) {
        return decide(newWords, keyboardOpen, charging, nowMillis, lastRunMillis) == Decision.TRAIN;
    }
}

package keyboardlm.core;

import java.io.File;
import java.io.IOException;
import java.util.List;
import java.util.Locale;

/**
 * The phone's nightly adaptation step (docs/engine.md §18.5), with no Android in it: the app's
 * background job calls {@link #run} and persists what the {@link Report} says; the keyboard reads
 * the result at session start with {@link #load}.
 *
 * One step: {@link TrainingSchedule} decides; not due, nothing is touched (not the bundle, the
 * trainer, the committed text nor the adapter file). Due: the bundle is loaded, the committed
 * messages ({@link CommittedText}, never a private field's) and the bundle's general sample (its
 * adapter-general.txt, {@link Bundle#adapterGeneralMessages}: the forgetting guard's text, if it has
 * one) are encoded alike and {@link AdapterTraining} runs over a {@link Trainer} opened for the run
 * and always closed after it. Only a {@link AdapterTraining.Outcome#SHIPPED} adapter (possibly
 * blended by the guard) is written ({@link Adapter#save}: whole, beside the file, then renamed over
 * it); on any other end (too short, not better, diverged, forgot too much general text, the trainer
 * threw, the write failed, stopped) the previous adapter file stays as it was, or there stays none.
 *
 * A run that ends (with an outcome, or a failure of the trainer or of the write) counts: the caller
 * records {@link Report#lastRunMillis} and saves the committed text, whose word count has restarted
 * ({@link CommittedText#endRun}: words committed during the run still count). A step that cannot
 * start (no bundle, no train signature, no trainer) or that {@link #stop} ends counts for nothing.
 */
public final class NightlyAdaptation {
    /** The adapter file's name in the app's private files. */
    public static final String FILE = "adapter.kbad";

    /** Opens the train signature for a bundle (the app: LiteRtTrainer). */
    public interface TrainerFactory {
        Trainer open(Bundle bundle) throws Exception;
    }

    /** How a step ended. */
    public enum Status {
        /** The schedule says not yet ({@link Report#decision} says why); nothing touched. */
        NOT_DUE,
        /** The bundle or the trainer could not be opened; nothing counted, nothing written. */
        CANNOT_START,
        /** {@link #stop} ended it; nothing counted, the previous adapter stays. */
        STOPPED,
        /** The trainer threw, or the new adapter could not be written; counted, the previous adapter stays. */
        FAILED,
        /** The run ended without a better adapter (too short, not better, diverged, forgot); counted, the previous adapter stays. */
        KEPT,
        /** A new adapter file replaced the previous one. */
        WRITTEN
    }

    private final File adapterFile;
    private final TrainerFactory trainers;
    private final AdapterTraining.Options options;
    private volatile boolean stopped;

    /** Steps writing {@code adapterFile} with the training loop's defaults. */
    public NightlyAdaptation(File adapterFile, TrainerFactory trainers) {
        this(adapterFile, trainers, AdapterTraining.Options.DEFAULT);
    }

    public NightlyAdaptation(File adapterFile, TrainerFactory trainers, AdapterTraining.Options options) {
        this.adapterFile = adapterFile;
        this.trainers = trainers;
        this.options = options;
    }

    /**
     * Ends a step in progress at its next trainer call, and any later one before it starts (the
     * app: JobService.onStopJob). Any thread.
     */
    public void stop() {
        stopped = true;
    }

    /**
     * One step (see the class comment): {@code files} the bundle, {@code committed} the user's
     * committed text; the schedule's inputs as {@link TrainingSchedule#decide} takes them (the new
     * words are {@code committed}'s). Never throws for a bad bundle, trainer or folder: the report says.
     */
    public Report run(BundleFiles files, CommittedText committed, boolean keyboardOpen, boolean charging, long nowMillis,
                      long lastRunMillis) {
        long counted;
        List<String> messages;
        synchronized (committed) {  // the count and the messages it counts, together
            counted = committed.newWords();
            messages = committed.messages();
        }
        TrainingSchedule.Decision decision = TrainingSchedule.decide(counted, keyboardOpen, charging, nowMillis, lastRunMillis);
        if (decision != TrainingSchedule.Decision.TRAIN) {
            return new Report(Status.NOT_DUE, decision, null, lastRunMillis, "not due: " + why(decision, counted, nowMillis,
                    lastRunMillis));
        }
        if (stopped) return new Report(Status.STOPPED, decision, null, lastRunMillis, "stopped before it started");
        Bundle bundle;
        AdapterTraining loop;
        Trainer trainer;
        try {
            bundle = Bundle.load(files);
            loop = AdapterTraining.forBundle(bundle, options);
        } catch (BundleException | RuntimeException e) {
            return new Report(Status.CANNOT_START, decision, null, lastRunMillis, "cannot adapt: " + oneLine(e));
        }
        try {
            trainer = trainers.open(bundle);
        } catch (Exception e) {
            return new Report(Status.CANNOT_START, decision, null, lastRunMillis, "cannot open the train signature: " + oneLine(e));
        }
        AdapterTraining.Result result;
        try {
            Tokenizer tokenizer = Tokenizer.standard();
            result = loop.run(stoppable(trainer), AdapterTraining.encode(messages, bundle.vocabulary, tokenizer),
                    AdapterTraining.encode(bundle.adapterGeneralMessages(), bundle.vocabulary, tokenizer));
        } catch (Stopped e) {
            return new Report(Status.STOPPED, decision, null, lastRunMillis, "stopped before the end; the previous adapter stays");
        } catch (RuntimeException e) {
            committed.endRun(counted);
            return new Report(Status.FAILED, decision, null, nowMillis, "training failed: " + oneLine(e)
                    + "; the previous adapter stays");
        } finally {
            trainer.close();
        }
        committed.endRun(counted);
        if (result.outcome != AdapterTraining.Outcome.SHIPPED) {
            return new Report(Status.KEPT, decision, result, nowMillis, result.message);
        }
        try {
            result.adapter.save(adapterFile);
        } catch (IOException | RuntimeException e) {
            return new Report(Status.FAILED, decision, result, nowMillis, result.message + "; but " + adapterFile
                    + " could not be written (" + oneLine(e) + "); the previous adapter stays");
        }
        return new Report(Status.WRITTEN, decision, result, nowMillis, result.message + "; wrote " + adapterFile);
    }

    /**
     * The user's adapter for {@code bundle} at session start: null when there is no file (the base
     * model); null too when the file does not fit (another bundle, corrupt, another format, a bundle
     * that takes no adapter), said in one line to {@code warning} (null: dropped). Never throws.
     */
    public static Adapter load(File file, Bundle bundle, UserWords.Warning warning) {
        if (!file.exists()) return null;
        try {
            return Adapter.load(file, bundle);
        } catch (BundleException | RuntimeException e) {
            if (warning != null) warning.warn(oneLine(e) + "; the keyboard runs on the base model");
            return null;
        }
    }

    /** Why the schedule says not yet, in words. */
    private static String why(TrainingSchedule.Decision decision, long words, long nowMillis, long lastRunMillis) {
        switch (decision) {
            case TOO_FEW_WORDS:
                return words + " words committed since the last run (at least " + TrainingSchedule.MIN_NEW_WORDS + ")";
            case KEYBOARD_OPEN:
                return "a keyboard session is open";
            case NOT_CHARGING:
                return "the phone is not charging";
            default:
                return String.format(Locale.ROOT, "the last run was %.1f h ago (at least %d h apart)",
                        (nowMillis - lastRunMillis) / 3_600_000.0, TrainingSchedule.MIN_INTERVAL_MILLIS / 3_600_000);
        }
    }

    /** Thrown into the loop by a stopped step's trainer. */
    private static final class Stopped extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    /** {@code trainer}, failing its next call once {@link #stop} is called. */
    private Trainer stoppable(final Trainer trainer) {
        return new Trainer() {
            @Override
            public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                                float learningRate, float l2) {
                if (stopped) throw new Stopped();
                return trainer.train(tokens, targets, mask, reset, state, adapter, learningRate, l2);
            }
        };
    }

    /** A BundleException's line as it is; any other exception with its class (e.g. LiteRT's IllegalArgumentException). */
    private static String oneLine(Exception e) {
        String text = e instanceof BundleException ? e.getMessage() : e.toString();
        return String.valueOf(text).replaceAll("\\s+", " ").trim();
    }

    /** What a step did, and what the caller persists. */
    public static final class Report {
        public final Status status;
        /** The schedule's answer ({@link TrainingSchedule.Decision#TRAIN} unless {@link Status#NOT_DUE}). */
        public final TrainingSchedule.Decision decision;
        /** The training loop's result when it ran to an end (its outcome and figures); else null. */
        public final AdapterTraining.Result result;
        /** The last run's time to record: the step's time when the run counts ({@link #ran}), else the one given. */
        public final long lastRunMillis;
        /** One line for the log: what happened and why. */
        public final String message;

        Report(Status status, TrainingSchedule.Decision decision, AdapterTraining.Result result, long lastRunMillis,
               String message) {
            this.status = status;
            this.decision = decision;
            this.result = result;
            this.lastRunMillis = lastRunMillis;
            this.message = message;
        }

        /** The run counts: record {@link #lastRunMillis} and save the committed text (its word count restarted). */
        public boolean ran() {
            return status == Status.FAILED || status == Status.KEPT || status == Status.WRITTEN;
        }

        /** A new adapter file: the next session should load it. */
        public boolean written() {
            return status == Status.WRITTEN;
        }

        /** The loop's outcome, or null when it did not run to an end. */
        public AdapterTraining.Outcome outcome() {
            return result == null ? null : result.outcome;
        }

        @Override
        public String toString() {
            return status + ": " + message;
        }
    }
}

package keyboardlm.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The on-device training loop (docs/engine.md §18.3; keyboard_lm/phone/adapter.py's adapt) over
 * a {@link Trainer}, the train signature of §18.2.
 *
 * Text: the user's committed messages, oldest first, never from private fields ({@link
 * CommittedText} collects them). Each message is cut into sentences as tokenization.md does
 * ({@link #sentences}); a sentence with a token is {@code <bos> ids <eos>}, its inputs the ids but
 * the last, its targets the ids but the first. The last max(1, round(0.1 * messages)) messages
 * are held out. Streams: each sentence ("reset"), or a message's sentences as one ("carry":
 * <bos> ... <eos> <bos> ... <eos>). Windows are packed: the training messages' streams, in order,
 * are laid end to end and cut into windows of T positions, a stream's first position with reset 1
 * (the train signature starts it from zero states), so a window holds as many sentences as fit and
 * a long one runs on into the next window; only the last window is padded (token 0, target 0,
 * mask 0, reset 0). The held-out messages' streams are packed the same way, on their own. The
 * first window of each part starts from zero states, each later one from the previous window's
 * next states. Too short (fewer than 300 training or 30 held-out targets): nothing is trained.
 * Pass 0 scores the held-out windows with the zero adapter and learning rate 0: the base held-out
 * loss. Each window's start states are recorded the first time it runs (pass 0, or epoch 1 for
 * the training windows) and fixed from then on. Then at most EPOCHS (10) epochs, one update per
 * training window, keeping the adapter with the lowest held-out loss; the run stops after an epoch
 * that does not improve on the best, or at a non-finite loss or parameter (that epoch is thrown
 * away). The best adapter ships only if it beats the base held-out loss.
 *
 * The forgetting guard (when the bundle has a general sample, {@link Bundle#adapterGeneralMessages},
 * and {@link Options#maxForgetting} is on): pass 0 also scores the general messages, packed as a
 * third part of their own (zero adapter, learning rate 0; never trained on): the base general loss
 * G0. A best adapter whose general loss G(1) is at most G0 (1 + max_forgetting) ships as it is;
 * otherwise it is blended toward the base (adapter_bias a, adapter_up a, adapter_down as is, each
 * candidate rounded to float16 before it is scored) with the largest a that 5 bisections of (0, 1)
 * measured within the limit; a = 0: nothing ships ({@link Outcome#FORGOT}). As
 * keyboard_lm/phone/adapter.py's limit_forgetting.
 *
 * As keyboard_lm/phone/adapter.py decides: the best starts as the base model (an epoch that does
 * not beat the base loss ends the run with nothing to ship), and an epoch's held-out loss is the
 * one of its adapter rounded to float16, as the file stores it and the phone will run it (that
 * rounded adapter is what ships; training goes on from the float32 one).
 *
 * The initial adapter_down is normal noise of standard deviation 1/sqrt(F) from java.util.Random
 * (the Python port draws its own: runs are not compared bit for bit across the ports).
 */
public final class AdapterTraining {
    public static final int EPOCHS = 10;
    public static final float LEARNING_RATE = 0.003f;
    public static final float L2 = 0.01f;
    public static final double HELD_OUT = 0.1;
    public static final int MIN_TRAINING_TARGETS = 300;
    public static final int MIN_HELD_OUT_TARGETS = 30;
    public static final long SEED = 0;
    /** The forgetting guard's limit (§18.3): the general loss may rise by at most 2% over the base's. */
    public static final double MAX_FORGETTING = 0.02;
    /** Bisections of the guard's blend weight a: to 1/32. */
    public static final int BISECTIONS = 5;

    /** How a run ended: a new adapter, or why the previous one (or none) stays. */
    public enum Outcome {
        SHIPPED, TOO_SHORT, NOT_BETTER, DIVERGED,
        /** The forgetting guard found no blend within its limit: it forgot too much general text. */
        FORGOT
    }

    /** The loop's settings: §18.3's values by default ({@link #DEFAULT}). */
    public static final class Options {
        public static final Options DEFAULT = new Options(EPOCHS, LEARNING_RATE, L2, HELD_OUT, SEED, MIN_TRAINING_TARGETS,
                MIN_HELD_OUT_TARGETS, MAX_FORGETTING);

        public final int epochs;
        public final float learningRate;
        public final float l2;
        public final double heldOut;
        public final long seed;
        public final int minTrainingTargets;
        public final int minHeldOutTargets;
        /**
         * The forgetting guard's limit: the shipped adapter's general loss is at most the base's
         * times (1 + maxForgetting). {@code Double.NaN}: the guard is off (keyboard_lm's None).
         */
        public final double maxForgetting;

        /** Options with the guard at its default ({@link #MAX_FORGETTING}). */
        public Options(int epochs, float learningRate, float l2, double heldOut, long seed, int minTrainingTargets,
                       int minHeldOutTargets) {
            this(epochs, learningRate, l2, heldOut, seed, minTrainingTargets, minHeldOutTargets, MAX_FORGETTING);
        }

        public Options(int epochs, float learningRate, float l2, double heldOut, long seed, int minTrainingTargets,
                       int minHeldOutTargets, double maxForgetting) {
            if (epochs < 1) throw new IllegalArgumentException("epochs must be at least 1, got " + epochs);
            if (!(learningRate >= 0) || Float.isInfinite(learningRate)) {
                throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + learningRate);
            }
            if (!(l2 >= 0) || Float.isInfinite(l2)) throw new IllegalArgumentException("l2 must be finite and >= 0, got " + l2);
            if (!(heldOut > 0 && heldOut < 1)) throw new IllegalArgumentException("held_out must be in (0, 1), got " + heldOut);
            if (minTrainingTargets < 1 || minHeldOutTargets < 1) {
                throw new IllegalArgumentException("the minimum target counts must be positive");
            }
            if (!Double.isNaN(maxForgetting) && !(maxForgetting >= 0 && !Double.isInfinite(maxForgetting))) {
                throw new IllegalArgumentException("max_forgetting must be finite and >= 0 (NaN: no guard), got " + maxForgetting);
            }
            this.epochs = epochs;
            this.learningRate = learningRate;
            this.l2 = l2;
            this.heldOut = heldOut;
            this.seed = seed;
            this.minTrainingTargets = minTrainingTargets;
            this.minHeldOutTargets = minHeldOutTargets;
            this.maxForgetting = maxForgetting;
        }

        /** True unless the forgetting guard is off (maxForgetting NaN). */
        public boolean guarded() {
            return !Double.isNaN(maxForgetting);
        }

        public Options withEpochs(int value) {
            return new Options(value, learningRate, l2, heldOut, seed, minTrainingTargets, minHeldOutTargets, maxForgetting);
        }

        public Options withLearningRate(float value) {
            return new Options(epochs, value, l2, heldOut, seed, minTrainingTargets, minHeldOutTargets, maxForgetting);
        }

        public Options withL2(float value) {
            return new Options(epochs, learningRate, value, heldOut, seed, minTrainingTargets, minHeldOutTargets, maxForgetting);
        }

        public Options withSeed(long value) {
            return new Options(epochs, learningRate, l2, heldOut, value, minTrainingTargets, minHeldOutTargets, maxForgetting);
        }

        /** The guard's limit; {@code Double.NaN} turns the guard off. */
        public Options withMaxForgetting(double value) {
            return new Options(epochs, learningRate, l2, heldOut, seed, minTrainingTargets, minHeldOutTargets, value);
        }
    }

    /** One window of the train signature: T positions, the last ones padding where mask is 0. */
    static final class Window {
        final int[] tokens;
        final int[] targets;
        final float[] mask;
        /** 1 at a stream's first position (the state entering it is zeros), else 0. */
        final float[] reset;
        /** Real positions (the sum of the mask). */
        final int real;
        final boolean heldOut;
        /** The general sample's part (the forgetting guard's; only ever scored, never trained on, never held out). */
        final boolean general;
        /** Not its part's first window: starts from the previous window's next states (else from zero states). */
        final boolean continues;

        Window(int[] tokens, int[] targets, float[] mask, float[] reset, int real, boolean heldOut, boolean general,
               boolean continues) {
            this.tokens = tokens;
            this.targets = targets;
            this.mask = mask;
            this.reset = reset;
            this.real = real;
            this.heldOut = heldOut;
            this.general = general;
            this.continues = continues;
        }
    }

    private final String modelSha256;
    private final int window;
    private final boolean resetAtSentenceStart;
    private final int[] stateSizes;
    private final int vocabularySize;
    private final int featureSize;
    private final int rank;
    private final Options options;

    /**
     * A loop for a model of these sizes: {@code window} T, the sentence context (true: "reset"),
     * the state sizes in the manifest's order, V, F and r. {@code modelSha256} goes into the
     * shipped {@link Adapter}.
     */
    public AdapterTraining(String modelSha256, int window, boolean resetAtSentenceStart, int[] stateSizes, int vocabularySize,
                           int featureSize, int rank, Options options) {
        if (window < 1 || vocabularySize < 4 || featureSize < 1 || rank < 1) {
            throw new IllegalArgumentException("adapter training needs T, F, r >= 1 and V >= 4; got T " + window + ", F "
                    + featureSize + ", r " + rank + ", V " + vocabularySize);
        }
        this.modelSha256 = modelSha256;
        this.window = window;
        this.resetAtSentenceStart = resetAtSentenceStart;
        this.stateSizes = stateSizes.clone();
        this.vocabularySize = vocabularySize;
        this.featureSize = featureSize;
        this.rank = rank;
        this.options = options;
    }

    /** The loop for {@code bundle}'s adapter block (a BundleException when it has none). */
    public static AdapterTraining forBundle(Bundle bundle, Options options) throws BundleException {
        if (!bundle.hasAdapter()) {
            throw new BundleException("manifest.json: field adapter is missing: the bundle has no train signature "
                    + "(re-export it with an adapter, docs/engine.md §18)");
        }
        if (bundle.adapterFormat() != Bundle.ADAPTER_BLOCK_FORMAT) {
            throw new BundleException("manifest.json: field adapter.format_version is " + bundle.adapterFormat() + ": its train "
                    + "signature is from an earlier keyboard-lm (one sentence per window); re-export the bundle with this one "
                    + "(adapter format " + Bundle.ADAPTER_BLOCK_FORMAT + ") to adapt");
        }
        return new AdapterTraining(bundle.modelSha256(), bundle.adapterWindow(), bundle.resetAtSentenceStart, bundle.stateSizes,
                bundle.vocabularySize, bundle.adapterFeatureSize(), bundle.adapterRank(), options);
    }

    // -- text ---------------------------------------------------------------------------------

    /**
     * The sentences of a message (data_pipeline/tokenization.py split_sentences): cut after every
     * token that normalizes to . ! or ?, each sentence as it stands in {@code text} (possibly
     * with no token: the caller drops those).
     */
    public static List<String> sentences(String text, Tokenizer tokenizer) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int[] span : tokenizer.tokenSpans(text)) {
            if (Tokenizer.SENTENCE_ENDS.contains(tokenizer.normalize(text.substring(span[0], span[1]), false))) {
                out.add(text.substring(start, span[1]));
                start = span[1];
            }
        }
        out.add(text.substring(start));
        return out;
    }

    /**
     * The messages as the loop reads them: per message, its sentences with a token, each
     * {@code <bos> ids <eos>} (a token outside the vocabulary is {@code <unk>}, as the engine feeds it).
     */
    public static List<int[][]> encode(List<String> messages, Vocabulary vocabulary, Tokenizer tokenizer) {
        List<int[][]> out = new ArrayList<>(messages.size());
        for (String message : messages) {
            List<int[]> sentences = new ArrayList<>();
            for (String sentence : sentences(message, tokenizer)) {
                List<String> tokens = tokenizer.tokenize(sentence, vocabulary.lowercase());
                if (tokens.isEmpty()) continue;
                int[] ids = new int[tokens.size() + 2];
                ids[0] = Vocabulary.BOS_ID;
                for (int i = 0; i < tokens.size(); i++) ids[i + 1] = vocabulary.id(tokens.get(i));
                ids[ids.length - 1] = Vocabulary.EOS_ID;
                sentences.add(ids);
            }
            out.add(sentences.toArray(new int[0][]));
        }
        return out;
    }

    /** How many of {@code messages} messages are held out: max(1, round(held_out * messages)), Python's round (half to even). */
    int heldOutMessages(int messages) {
        return messages == 0 ? 0 : Math.max(1, (int) Math.rint(options.heldOut * messages));
    }

    /** A message's sentences as one stream ("carry": {@code <bos> ... <eos> <bos> ... <eos>}). */
    private static int[] concatenated(int[][] sentences) {
        int length = 0;
        for (int[] ids : sentences) length += ids.length;
        int[] out = new int[length];
        int at = 0;
        for (int[] ids : sentences) {
            System.arraycopy(ids, 0, out, at, ids.length);
            at += ids.length;
        }
        return out;
    }

    /**
     * Every window in order: the training messages' first, then the held-out tail's, each part's
     * streams packed into windows of their own (§18.3).
     */
    List<Window> windows(List<int[][]> messages) {
        List<Window> out = new ArrayList<>();
        int firstHeldOut = messages.size() - heldOutMessages(messages.size());
        pack(messages, 0, firstHeldOut, false, false, out);
        pack(messages, firstHeldOut, messages.size(), true, false, out);
        return out;
    }

    /** The general sample's windows (the forgetting guard's third part, §18.3): its streams packed on their own. */
    List<Window> generalWindows(List<int[][]> general) {
        List<Window> out = new ArrayList<>();
        pack(general, 0, general.size(), false, true, out);
        return out;
    }

    /** Messages [from, to)'s streams laid end to end and cut into windows of T; only the last is padded. */
    private void pack(List<int[][]> messages, int from, int to, boolean heldOut, boolean general, List<Window> out) {
        int[] tokens = null, targets = null;
        float[] mask = null, reset = null;
        int at = 0;
        boolean first = true;
        for (int m = from; m < to; m++) {
            int[][] sentences = messages.get(m);
            if (!resetAtSentenceStart && sentences.length > 1) sentences = new int[][] {concatenated(sentences)};
            for (int[] ids : sentences) {
                for (int id : ids) {
                    if (id < 0 || id >= vocabularySize) {
                        throw new IllegalArgumentException((general ? "general message " : "message ") + m + ": id " + id + " is outside the vocabulary (" + vocabularySize + ")");
                    }
                }
                for (int p = 0; p + 1 < ids.length; p++) {
                    if (at == 0) {
                        tokens = new int[window];
                        targets = new int[window];
                        mask = new float[window];
                        reset = new float[window];
                    }
                    tokens[at] = ids[p];
                    targets[at] = ids[p + 1];
                    mask[at] = 1f;
                    reset[at] = p == 0 ? 1f : 0f;
                    if (++at == window) {
                        out.add(new Window(tokens, targets, mask, reset, window, heldOut, general, !first));
                        first = false;
                        at = 0;
                    }
                }
            }
        }
        if (at > 0) out.add(new Window(tokens, targets, mask, reset, at, heldOut, general, !first));
    }

    // -- the loop -------------------------------------------------------------------------------

    /** Runs §18.3 on {@code messages} ({@link #encode}d, oldest first) over {@code trainer}, without the forgetting guard. */
    public Result run(Trainer trainer, List<int[][]> messages) {
        return run(trainer, messages, Collections.<int[][]>emptyList());
    }

    /**
     * Runs §18.3 on {@code messages} ({@link #encode}d, oldest first) over {@code trainer}, with the
     * forgetting guard on {@code general} (the bundle's general sample, {@link #encode}d as the
     * messages are) unless it is empty (or null), holds no target, or the options turn the guard off.
     */
    public Result run(Trainer trainer, List<int[][]> messages, List<int[][]> general) {
        List<Window> windows = windows(messages);
        List<Window> generalWindows = options.guarded() && general != null ? generalWindows(general)
                : Collections.<Window>emptyList();
        long generalTargets = 0;
        for (Window w : generalWindows) generalTargets += w.real;
        long trainingTargets = 0, heldOutTargets = 0;
        for (Window w : windows) {
            if (w.heldOut) heldOutTargets += w.real;
            else trainingTargets += w.real;
        }
        Result.Builder result = new Result.Builder(messages.size(), trainingTargets, heldOutTargets);
        if (trainingTargets < options.minTrainingTargets || heldOutTargets < options.minHeldOutTargets) {
            return result.end(Outcome.TOO_SHORT, String.format(Locale.ROOT,
                    "too little text to adapt: %d training targets (at least %d) and %d held-out targets (at least %d) "
                            + "in %d messages; nothing trained", trainingTargets, options.minTrainingTargets, heldOutTargets,
                    options.minHeldOutTargets, messages.size()));
        }
        // pass 0: the base held-out loss (and the held-out windows' start states; the training
        // windows' are recorded by epoch 1: the base is frozen, so they never change)
        AdapterState zero = AdapterState.start(new float[vocabularySize], new float[featureSize * rank], new float[rank * vocabularySize]);
        float[][][] starts = new float[windows.size()][][];
        float[][] previous = null;
        double baseSum = 0;
        for (int i = 0; i < windows.size(); i++) {
            Window w = windows.get(i);
            if (!w.heldOut) continue;
            starts[i] = w.continues ? previous : StepModel.zeros(stateSizes);
            Trainer.Result out = trainer.train(w.tokens, w.targets, w.mask, w.reset, starts[i], zero, 0f, options.l2);
            previous = out.state;
            baseSum += (double) out.loss * w.real;
        }
        result.baseLoss = baseSum / heldOutTargets;
        if (!finite(result.baseLoss)) {
            return result.end(Outcome.DIVERGED, "the base model's held-out loss is " + result.baseLoss + "; nothing trained");
        }
        // pass 0 of the guard: the base general loss G0 (and the general windows' start states)
        float[][][] generalStarts = new float[generalWindows.size()][][];
        if (generalTargets > 0) {
            previous = null;
            double generalSum = 0;
            for (int i = 0; i < generalWindows.size(); i++) {
                Window w = generalWindows.get(i);
                generalStarts[i] = w.continues ? previous : StepModel.zeros(stateSizes);
                Trainer.Result out = trainer.train(w.tokens, w.targets, w.mask, w.reset, generalStarts[i], zero, 0f, options.l2);
                previous = out.state;
                generalSum += (double) out.loss * w.real;
            }
            result.baseGeneralLoss = generalSum / generalTargets;
            result.maxForgetting = options.maxForgetting;
            if (!finite(result.baseGeneralLoss)) {
                return result.end(Outcome.DIVERGED, "the base model's general loss is " + result.baseGeneralLoss + "; nothing trained");
            }
        }
        // epochs
        float[] down = new float[featureSize * rank];
        Random random = new Random(options.seed);
        double deviation = 1.0 / Math.sqrt(featureSize);
        for (int k = 0; k < down.length; k++) down[k] = (float) (random.nextGaussian() * deviation);
        AdapterState current = AdapterState.start(new float[vocabularySize], down, new float[rank * vocabularySize]);
        AdapterState best = null;
        boolean diverged = false;
        double bestLoss = result.baseLoss;  // an epoch must beat the base model, then the best epoch
        for (int epoch = 1; epoch <= options.epochs; epoch++) {
            AdapterState state = current;
            boolean finite = true;
            float[][] before = null;  // the previous training window's end state
            for (int i = 0; i < windows.size() && finite; i++) {
                Window w = windows.get(i);
                if (w.heldOut) continue;
                if (starts[i] == null) starts[i] = w.continues ? before : StepModel.zeros(stateSizes);
                Trainer.Result out = trainer.train(w.tokens, w.targets, w.mask, w.reset, starts[i], state, options.learningRate,
                        options.l2);
                finite = finite(out.loss) && out.adapter.finite();
                state = out.adapter;
                before = out.state;
            }
            AdapterState stored = finite ? stored(state) : null;
            double loss = finite ? heldOutLoss(trainer, windows, starts, stored, heldOutTargets) : Double.NaN;
            if (!finite(loss)) {
                result.stopped = "a non-finite loss or parameter in epoch " + epoch + " (thrown away)";
                diverged = true;
                break;
            }
            result.epochLosses.add(loss);
            if (!(loss < bestLoss)) {
                result.stopped = "no improvement in epoch " + epoch + (best == null ? " (not below the base model)" : "");
                break;
            }
            best = stored;
            current = state;
            bestLoss = loss;
            result.bestLoss = loss;
            result.bestEpoch = epoch;
            if (epoch == options.epochs) result.stopped = "the last epoch (" + epoch + ")";
        }
        if (best == null && diverged) {
            return result.end(Outcome.DIVERGED, "training diverged: " + result.stopped + "; the previous adapter stays");
        }
        if (best == null) {
            return result.end(Outcome.NOT_BETTER, String.format(Locale.ROOT, "the adapter does not beat the base model "
                    + "(held-out loss %.4f after epoch 1, base %.4f); the previous adapter stays", result.epochLosses.get(0),
                    result.baseLoss));
        }
        result.shippedLoss = result.bestLoss;
        String guard = "";
        if (generalTargets > 0) {
            best = limitForgetting(trainer, generalWindows, generalStarts, generalTargets, best, result);
            if (best == null) return result.end(Outcome.FORGOT, result.guard + "; the previous adapter stays");
            if (result.blend < 1) result.shippedLoss = heldOutLoss(trainer, windows, starts, best, heldOutTargets);
            guard = String.format(Locale.ROOT, "; forgetting guard: %s (general loss %.4f, base %.4f%s)", result.guard,
                    result.generalLoss, result.baseGeneralLoss, result.blend < 1
                            ? String.format(Locale.ROOT, "; held-out loss %.4f at that strength", result.shippedLoss) : "");
        }
        String figures = String.format(Locale.ROOT, "held-out loss %.4f at epoch %d, base %.4f; stopped: %s", result.bestLoss,
                result.bestEpoch, result.baseLoss, result.stopped);
        Result shipped = result.end(Outcome.SHIPPED, "adapted: " + figures + guard);
        return new Result(shipped, new Adapter(modelSha256, featureSize, rank, vocabularySize, best.bias(), best.down(), best.up(),
                shipped.figures()));
    }

    /**
     * §18.3's forgetting guard on the best adapter {@code best} (as stored): itself if its general
     * loss is within G0 (1 + max_forgetting); else the blend (bias a, up a, down as is, rounded to
     * float16) with the largest a that {@link #BISECTIONS} bisections of (0, 1) measured within the
     * limit; null when there is none (a = 0). Puts the figures in {@code result}.
     */
    private AdapterState limitForgetting(Trainer trainer, List<Window> windows, float[][][] starts, long targets, AdapterState best,
                                         Result.Builder result) {
        double base = result.baseGeneralLoss, limit = options.maxForgetting, ceiling = base * (1.0 + limit);
        double trained = scoredLoss(trainer, windows, starts, best, targets);
        result.trainedGeneralLoss = trained;
        result.blend = 1.0;
        if (trained <= ceiling) {
            result.generalLoss = trained;
            result.guard = "within the limit: shipped as trained";
            return best;
        }
        double low = 0, high = 1, chosenLoss = Double.NaN;
        AdapterState chosen = null;
        for (int i = 0; i < BISECTIONS; i++) {
            double middle = (low + high) / 2;
            AdapterState candidate = scaled(best, middle);
            double loss = scoredLoss(trainer, windows, starts, candidate, targets);
            if (loss <= ceiling) {  // (a NaN loss is not within the limit)
                low = middle;
                chosen = candidate;
                chosenLoss = loss;
            } else {
                high = middle;
            }
        }
        double trainedRise = trained / base - 1.0;
        if (chosen == null) {
            result.blend = 0.0;
            result.generalLoss = base;  // as keyboard_lm's record: nothing ships, no rise
            result.guard = String.format(Locale.ROOT, "it forgot too much general text (its general loss rose %s, and still more "
                    + "than %s at %s of it)", percent(trainedRise), percent(limit), plain(high));
            return null;
        }
        result.blend = low;
        result.generalLoss = chosenLoss;
        result.guard = String.format(Locale.ROOT, "its general loss rose %s as trained, over the %s limit: shipped at %s of its "
                + "strength", percent(trainedRise), percent(limit), plain(low));
        return chosen;
    }

    /** The adapter blended toward the base (§18.3): bias and up times {@code a}, down as is, rounded to float16 (as stored). */
    static AdapterState scaled(AdapterState state, double a) {
        float[][] params = new float[3][];
        for (int i = 0; i < 3; i++) {
            params[i] = state.params[i].clone();
            if (i == 1) continue;  // adapter_down
            for (int k = 0; k < params[i].length; k++) params[i][k] = (float) (params[i][k] * a);
        }
        return stored(new AdapterState(params, state.m, state.v, state.stepCount));
    }

    /** Python's f"{x:.1%}". */
    private static String percent(double x) {
        return String.format(Locale.ROOT, "%.1f%%", x * 100);
    }

    /** Python's f"{x:g}" for the bisection's k/32 (at most 5 significant digits): 0.5, 0.03125. */
    private static String plain(double x) {
        return java.math.BigDecimal.valueOf(x).stripTrailingZeros().toPlainString();
    }

    /** {@code state} with its arrays as the file stores them: rounded to float16 (to nearest, ties to even) and back. */
    static AdapterState stored(AdapterState state) {
        float[][] params = new float[3][];
        for (int i = 0; i < 3; i++) {
            params[i] = new float[state.params[i].length];
            for (int k = 0; k < params[i].length; k++) params[i][k] = Adapter.fromHalf(Adapter.toHalf(state.params[i][k]));
        }
        return new AdapterState(params, state.m, state.v, state.stepCount);
    }

    /** {@code windows}' losses with {@code state} from their recorded starts (learning rate 0), weighted by their real positions. */
    private double scoredLoss(Trainer trainer, List<Window> windows, float[][][] starts, AdapterState state, long targets) {
        double sum = 0;
        for (int i = 0; i < windows.size(); i++) {
            Window w = windows.get(i);
            sum += (double) trainer.train(w.tokens, w.targets, w.mask, w.reset, starts[i], state, 0f, options.l2).loss * w.real;
        }
        return sum / targets;
    }

    /** The held-out windows' losses with {@code state} (learning rate 0), weighted by their real positions. */
    private double heldOutLoss(Trainer trainer, List<Window> windows, float[][][] starts, AdapterState state, long targets) {
        double sum = 0;
        for (int i = 0; i < windows.size(); i++) {
            Window w = windows.get(i);
            if (!w.heldOut) continue;
            sum += (double) trainer.train(w.tokens, w.targets, w.mask, w.reset, starts[i], state, 0f, options.l2).loss * w.real;
        }
        return sum / targets;
    }

    private static boolean finite(double value) {
        return !Double.isNaN(value) && !Double.isInfinite(value);
    }

    /** What a run did: shipped or why not (one line, said once), the figures, and the adapter that ships. */
    public static final class Result {
        public final Outcome outcome;
        /** One line for the log or the user: what happened and why. */
        public final String message;
        public final int messages;
        public final long trainingTargets;
        public final long heldOutTargets;
        /** The base held-out loss (pass 0); NaN when nothing was scored. */
        public final double baseLoss;
        /** The held-out loss after each epoch that finished with finite numbers. */
        public final List<Double> epochLosses;
        /** The best epoch (1-based) and its held-out loss; 0 and NaN when there is none. */
        public final int bestEpoch;
        public final double bestLoss;
        /** Why the epochs ended: "the last epoch (N)", "no improvement in epoch N", "a non-finite ... in epoch N"; null if none ran. */
        public final String stopped;
        /** The held-out loss of the adapter that ships: {@link #bestLoss}, or its blend's when the guard blended it; else NaN. */
        public final double shippedLoss;
        /**
         * The forgetting guard (§18.3): the base general loss G0, scored in pass 0; NaN without a
         * guard (no general sample, one without a target, or the guard off) or before pass 0.
         */
        public final double baseGeneralLoss;
        /** The guard's limit (the options' maxForgetting) when it is on and there is a general sample, else NaN. */
        public final double maxForgetting;
        /** The best epoch's adapter's general loss G(1), as trained; NaN when the guard did not get to it. */
        public final double trainedGeneralLoss;
        /** The general loss of the adapter that ships (G(1), or its blend's); G0 when nothing ships ({@link Outcome#FORGOT}). */
        public final double generalLoss;
        /** The blend weight a: 1 when not blended (or no guard ran), 0 when nothing ships for it ({@link Outcome#FORGOT}). */
        public final double blend;
        /** What the guard did with the best adapter, in words (keyboard_lm's record's "what"); null when it did not run. */
        public final String guard;
        /** The adapter that ships (its header carries {@link #figures}), or null: the previous adapter (or none) stays. */
        public final Adapter adapter;

        private Result(Builder b, Outcome outcome, String message) {
            this.outcome = outcome;
            this.message = message;
            this.messages = b.messages;
            this.trainingTargets = b.trainingTargets;
            this.heldOutTargets = b.heldOutTargets;
            this.baseLoss = b.baseLoss;
            this.epochLosses = Collections.unmodifiableList(new ArrayList<>(b.epochLosses));
            this.bestEpoch = b.bestEpoch;
            this.bestLoss = b.bestLoss;
            this.stopped = b.stopped;
            this.shippedLoss = b.shippedLoss;
            this.baseGeneralLoss = b.baseGeneralLoss;
            this.maxForgetting = b.maxForgetting;
            this.trainedGeneralLoss = b.trainedGeneralLoss;
            this.generalLoss = b.generalLoss;
            this.blend = b.blend;
            this.guard = b.guard;
            this.adapter = null;
        }

        private Result(Result r, Adapter adapter) {
            this.outcome = r.outcome;
            this.message = r.message;
            this.messages = r.messages;
            this.trainingTargets = r.trainingTargets;
            this.heldOutTargets = r.heldOutTargets;
            this.baseLoss = r.baseLoss;
            this.epochLosses = r.epochLosses;
            this.bestEpoch = r.bestEpoch;
            this.bestLoss = r.bestLoss;
            this.stopped = r.stopped;
            this.shippedLoss = r.shippedLoss;
            this.baseGeneralLoss = r.baseGeneralLoss;
            this.maxForgetting = r.maxForgetting;
            this.trainedGeneralLoss = r.trainedGeneralLoss;
            this.generalLoss = r.generalLoss;
            this.blend = r.blend;
            this.guard = r.guard;
            this.adapter = adapter;
        }

        /** The shipped (or, for {@link Outcome#FORGOT}, kept) general loss's rise over G0: generalLoss / G0 - 1; NaN without a guard. */
        public double generalRise() {
            return generalLoss / baseGeneralLoss - 1.0;
        }

        public boolean shipped() {
            return outcome == Outcome.SHIPPED;
        }

        /** The run's figures as the .kbad header's free-form training block records them. */
        public JSONObject figures() {
            try {
                JSONObject out = new JSONObject();
                out.put("outcome", outcome.name().toLowerCase(Locale.ROOT));
                out.put("messages", messages).put("training_targets", trainingTargets).put("held_out_targets", heldOutTargets);
                if (finite(baseLoss)) out.put("base_held_out_loss", baseLoss);
                JSONArray losses = new JSONArray();
                for (double loss : epochLosses) losses.put(loss);
                out.put("held_out_losses", losses);
                if (bestEpoch > 0) out.put("best_epoch", bestEpoch).put("held_out_loss", finite(shippedLoss) ? shippedLoss : bestLoss);
                if (stopped != null) out.put("stopped", stopped);
                if (guard != null) {  // keyboard_lm/phone/adapter.py limit_forgetting's record
                    JSONObject record = new JSONObject().put("limit", maxForgetting).put("base_general_loss", baseGeneralLoss);
                    if (finite(trainedGeneralLoss)) {
                        record.put("trained_general_loss", trainedGeneralLoss)
                                .put("trained_rise", trainedGeneralLoss / baseGeneralLoss - 1.0);
                    }
                    record.put("blend", blend);
                    if (finite(generalLoss)) record.put("general_loss", generalLoss).put("rise", generalRise());
                    out.put("guard", record.put("what", guard));
                }
                return out;
            } catch (JSONException e) {
                throw new IllegalStateException(e);  // only finite numbers are put
            }
        }

        /** The figures gathered while the loop runs. */
        static final class Builder {
            final int messages;
            final long trainingTargets;
            final long heldOutTargets;
            double baseLoss = Double.NaN;
            final List<Double> epochLosses = new ArrayList<>();
            int bestEpoch;
            double bestLoss = Double.NaN;
            String stopped;
            double shippedLoss = Double.NaN;
            double baseGeneralLoss = Double.NaN;
            double maxForgetting = Double.NaN;
            double trainedGeneralLoss = Double.NaN;
            double generalLoss = Double.NaN;
            double blend = 1.0;
            String guard;

            Builder(int messages, long trainingTargets, long heldOutTargets) {
                this.messages = messages;
                this.trainingTargets = trainingTargets;
                this.heldOutTargets = heldOutTargets;
            }

            Result end(Outcome outcome, String message) {
                return new Result(this, outcome, message);
            }
        }
    }
}

package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training loop of docs/engine.md §18.3 over {@link ToyTrainer}, a test double for LiteRT's
 * train signature that does §18.2's arithmetic on a toy frozen model: the loop's decisions (too
 * short, pass 0, keep the best epoch, stop after one that does not improve, throw away a
 * non-finite epoch, ship only below the base loss) are taken on real losses.
 */
class AdapterTrainingTest {
    @TempDir
    File dir;

    private static final int V = 16, F = 6, R = 2, T = 5;
    private static final int[] STATES = {4, 3};
    /** The toy chains below were sized for 6 epochs and a light L2 pull; the shipped defaults
     *  (AdapterTraining.Options.DEFAULT) were chosen on real users (benchmarks/personalization_ondevice.py). */
    private static final AdapterTraining.Options TOY = AdapterTraining.Options.DEFAULT.withEpochs(6).withL2(1e-4f);

    /** Messages of a Markov chain over the words 4..V-1: after w comes (3w + shift) mod words with probability {@code stick}. */
    static List<int[][]> chain(int messages, long seed, int shift, double stick) {
        Random random = new Random(seed);
        List<int[][]> out = new ArrayList<>();
        int words = V - 4;
        for (int m = 0; m < messages; m++) {
            int[][] sentences = new int[1 + random.nextInt(2)][];
            for (int s = 0; s < sentences.length; s++) {
                int length = 3 + random.nextInt(5);
                int[] ids = new int[length + 2];
                ids[0] = Vocabulary.BOS_ID;
                int word = random.nextInt(words);
                for (int i = 1; i <= length; i++) {
                    ids[i] = 4 + word;
                    word = random.nextDouble() < stick ? (word * 3 + shift) % words : random.nextInt(words);
                }
                ids[length + 1] = Vocabulary.EOS_ID;
                sentences[s] = ids;
            }
            out.add(sentences);
        }
        return out;
    }

    private static AdapterTraining loop(AdapterTraining.Options options) {
        return new AdapterTraining("toy", T, true, STATES, V, F, R, options);
    }

    private static ToyTrainer trainer() {
        return new ToyTrainer(V, F, R, T, STATES, 7);
    }

    /** Held-out loss of {@code adapter} scored apart from the loop: the windows' losses weighted by their real positions. */
    private static double heldOutLoss(AdapterTraining loop, List<int[][]> messages, Adapter adapter) {
        ToyTrainer scorer = trainer();
        AdapterState state = AdapterState.start(adapter.bias, adapter.down, adapter.up);
        double sum = 0, n = 0;
        float[][] previous = null;
        for (AdapterTraining.Window w : loop.windows(messages)) {
            float[][] start = w.continues ? previous : StepModel.zeros(STATES);
            Trainer.Result out = scorer.train(w.tokens, w.targets, w.mask, w.reset, start, state, 0f, 0f);
            previous = out.state;
            if (w.heldOut) {
                sum += (double) out.loss * w.real;
                n += w.real;
            }
        }
        return sum / n;
    }

    private static int count(List<AdapterTraining.Window> windows, boolean heldOut) {
        int n = 0;
        for (AdapterTraining.Window w : windows) n += w.heldOut == heldOut ? 1 : 0;
        return n;
    }

    @Test
    void keepsTheBestEpochAndStopsAfterOneThatDoesNotImprove() {
        // epochs 1-3 improve, epoch 4 does not: epoch 3's adapter ships, not the last one
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        AdapterTraining loop = loop(TOY.withLearningRate(0.02f));
        ToyTrainer trainer = trainer();
        AdapterTraining.Result result = loop.run(trainer, messages);
        List<Double> losses = result.epochLosses;
        assertEquals(4, losses.size(), losses.toString());
        assertTrue(losses.get(0) < result.baseLoss && losses.get(1) < losses.get(0) && losses.get(2) < losses.get(1)
                && losses.get(3) >= losses.get(2), losses.toString());
        assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome, result.message);
        assertEquals(3, result.bestEpoch);
        assertEquals(losses.get(2), result.bestLoss);
        assertEquals("no improvement in epoch 4", result.stopped);
        assertFalse(result.message.contains("\n"));
        assertTrue(result.message.startsWith("adapted: held-out loss "), result.message);
        // the adapter that ships is epoch 3's, as the file stores it (float16), and scores what the loop said
        for (float[] array : result.adapter.arrays()) {
            for (float value : array) assertEquals(value, Adapter.fromHalf(Adapter.toHalf(value)));
        }
        assertEquals(result.bestLoss, heldOutLoss(loop, messages, result.adapter), 1e-6);
        assertTrue(Math.abs(losses.get(3) - result.bestLoss) > 1e-4);
        // pass 0 scores the held-out windows; each epoch updates on the training windows, then scores the held-out ones
        List<AdapterTraining.Window> windows = loop.windows(messages);
        long heldOutWindows = windows.stream().filter(w -> w.heldOut).count();
        assertEquals(heldOutWindows + 4 * windows.size(), trainer.calls);
        assertEquals(10, loop.heldOutMessages(messages.size()));
        JSONObject figures = result.adapter.training;
        assertEquals(3, figures.optInt("best_epoch"));
        assertEquals(4, figures.optJSONArray("held_out_losses").length());
        assertEquals("shipped", figures.optString("outcome"));
    }

    @Test
    void anEpochThatDoesNotBeatTheBaseEndsTheRun() {
        // the held-out tail is a looser chain than the training text: epoch 1 overshoots, worse than
        // the base model. The best starts as the base (keyboard_lm/phone/adapter.py): the run stops there.
        List<int[][]> messages = chain(90, 1, 1, 0.6);
        messages.addAll(chain(10, 2, 1, 0.3));
        AdapterTraining loop = loop(TOY.withLearningRate(0.3f));
        ToyTrainer trainer = trainer();
        AdapterTraining.Result result = loop.run(trainer, messages);
        assertEquals(AdapterTraining.Outcome.NOT_BETTER, result.outcome, result.message);
        assertEquals(1, result.epochLosses.size());
        assertTrue(result.epochLosses.get(0) > result.baseLoss);
        assertEquals("no improvement in epoch 1 (not below the base model)", result.stopped);
        assertEquals(count(loop.windows(messages), true) + loop.windows(messages).size(), trainer.calls);
        assertNull(result.adapter);
    }

    @Test
    void runsEveryEpochWhileItImproves() {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        AdapterTraining.Result result = loop(TOY.withLearningRate(0.001f)).run(trainer(), messages);
        assertEquals(TOY.epochs, result.epochLosses.size());
        for (int i = 1; i < result.epochLosses.size(); i++) assertTrue(result.epochLosses.get(i) < result.epochLosses.get(i - 1));
        assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome);
        assertEquals(6, result.bestEpoch);
        assertEquals("the last epoch (6)", result.stopped);
    }

    @Test
    void anAdapterThatDoesNotBeatTheBaseIsDiscarded() {
        // trained on one chain, scored on another: every epoch is worse than the base model
        List<int[][]> messages = chain(90, 1, 1, 0.9);
        messages.addAll(chain(10, 2, 2, 0.9));
        AdapterTraining.Result result = loop(TOY.withLearningRate(0.01f)).run(trainer(), messages);
        assertEquals(AdapterTraining.Outcome.NOT_BETTER, result.outcome);
        assertNull(result.adapter);
        assertEquals(1, result.epochLosses.size());
        assertTrue(result.epochLosses.get(0) >= result.baseLoss);
        assertEquals(0, result.bestEpoch);
        assertTrue(Double.isNaN(result.bestLoss));
        assertEquals(String.format("the adapter does not beat the base model (held-out loss %.4f after epoch 1, base %.4f); "
                + "the previous adapter stays", result.epochLosses.get(0), result.baseLoss), result.message);
        assertTrue(result.message.endsWith("; the previous adapter stays"), result.message);
    }

    @Test
    void nonFiniteParametersEndTheRun() {
        // a learning rate near the float range: the second update overflows to infinity
        ToyTrainer trainer = trainer();
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        AdapterTraining loop = loop(TOY.withLearningRate(3e38f));
        AdapterTraining.Result result = loop.run(trainer, messages);
        assertEquals(AdapterTraining.Outcome.DIVERGED, result.outcome);
        assertNull(result.adapter);
        assertTrue(result.epochLosses.isEmpty());
        assertEquals(0, result.bestEpoch);
        assertEquals("training diverged: a non-finite loss or parameter in epoch 1 (thrown away); the previous adapter stays",
                result.message);
        List<AdapterTraining.Window> windows = loop.windows(messages);
        assertTrue(trainer.calls < count(windows, true) + count(windows, false), "stopped within epoch 1: " + trainer.calls);
    }

    /** A trainer whose answer to call {@code at} (1-based) has a NaN loss or a NaN parameter: an interpreter going bad. */
    private static Trainer breaksAt(Trainer trainer, int at, boolean inLoss) {
        return new Trainer() {
            int calls;

            @Override
            public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                                float rate, float l2) {
                Result out = trainer.train(tokens, targets, mask, reset, state, adapter, rate, l2);
                if (++calls != at) return out;
                if (inLoss) return new Result(Float.NaN, out.adapter, out.state);
                float[][] params = out.adapter.params.clone();
                params[2] = params[2].clone();
                params[2][5] = Float.NaN;
                return new Result(out.loss, new AdapterState(params, out.adapter.m, out.adapter.v, out.adapter.stepCount), out.state);
            }
        };
    }

    @Test
    void aNonFiniteEpochIsThrownAwayAndTheBestBeforeItShips() {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        AdapterTraining loop = loop(TOY.withLearningRate(0.001f));
        List<AdapterTraining.Window> windows = loop.windows(messages);
        AdapterTraining.Result clean = loop.run(trainer(), messages);
        int training = count(windows, false);
        int epoch3 = count(windows, true) + 2 * windows.size() + training / 2;  // mid-way through epoch 3's updates
        for (boolean inLoss : new boolean[] {true, false}) {
            AdapterTraining.Result result = loop.run(breaksAt(trainer(), epoch3, inLoss), messages);
            assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome);
            assertEquals(clean.epochLosses.subList(0, 2), result.epochLosses);
            assertEquals(2, result.bestEpoch);
            assertEquals("a non-finite loss or parameter in epoch 3 (thrown away)", result.stopped);
            assertEquals(result.bestLoss, heldOutLoss(loop, messages, result.adapter), 1e-6);
        }
        // at the first update: nothing to ship
        AdapterTraining.Result first = loop.run(breaksAt(trainer(), count(windows, true) + 1, false), messages);
        assertEquals(AdapterTraining.Outcome.DIVERGED, first.outcome);
        // a held-out score that is not finite throws the epoch away too
        AdapterTraining.Result scoring = loop.run(breaksAt(trainer(), count(windows, true) + training + 1, true), messages);
        assertEquals(AdapterTraining.Outcome.DIVERGED, scoring.outcome);
        assertTrue(scoring.epochLosses.isEmpty());
    }

    /** {@code count} messages of one sentence with {@code targets} targets each (targets - 1 words). */
    private static List<int[][]> messages(int count, int targets) {
        List<int[][]> out = new ArrayList<>();
        for (int m = 0; m < count; m++) {
            int[] ids = new int[targets + 1];
            ids[0] = Vocabulary.BOS_ID;
            for (int i = 1; i < targets; i++) ids[i] = 4 + (m + i) % (V - 4);
            ids[targets] = Vocabulary.EOS_ID;
            out.add(new int[][] {ids});
        }
        return out;
    }

    @Test
    void tooShortTrainsNothing() {
        AdapterTraining loop = loop(TOY);
        List<int[][]> enough = messages(6, 50);  // 300 training targets
        enough.addAll(messages(1, 30));  // 30 held out (7 messages: 1 held out)
        ToyTrainer trainer = trainer();
        AdapterTraining.Result result = loop.run(trainer, enough);
        assertEquals(300, result.trainingTargets);
        assertEquals(30, result.heldOutTargets);
        assertFalse(result.outcome == AdapterTraining.Outcome.TOO_SHORT);
        assertTrue(trainer.calls > 0);

        List<int[][]> fewTraining = messages(5, 50);
        fewTraining.addAll(messages(1, 49));
        fewTraining.addAll(messages(1, 30));
        List<int[][]> fewHeldOut = messages(6, 50);
        fewHeldOut.addAll(messages(1, 29));
        for (List<int[][]> text : Arrays.asList(fewTraining, fewHeldOut, new ArrayList<int[][]>())) {
            trainer = trainer();
            result = loop.run(trainer, text);
            assertEquals(AdapterTraining.Outcome.TOO_SHORT, result.outcome);
            assertEquals(0, trainer.calls, "nothing is run");
            assertNull(result.adapter);
            assertTrue(Double.isNaN(result.baseLoss));
            assertEquals(String.format("too little text to adapt: %d training targets (at least 300) and %d held-out targets "
                    + "(at least 30) in %d messages; nothing trained", result.trainingTargets, result.heldOutTargets, text.size()),
                    result.message);
        }
        assertEquals(299, loop.run(trainer(), fewTraining).trainingTargets);
        assertEquals(29, loop.run(trainer(), fewHeldOut).heldOutTargets);
    }

    @Test
    void theHeldOutTailRoundsAsPythonDoes() {
        AdapterTraining loop = loop(TOY);
        // max(1, round(0.1 * n)), Python's round: halves to even
        int[][] cases = {{0, 0}, {1, 1}, {4, 1}, {5, 1}, {6, 1}, {14, 1}, {15, 2}, {16, 2}, {24, 2}, {25, 2}, {26, 3}, {35, 4},
            {45, 4}, {55, 6}, {100, 10}, {105, 10}};
        for (int[] c : cases) assertEquals(c[1], loop.heldOutMessages(c[0]), "messages " + c[0]);
    }

    private static int[] ids(int... values) {
        return values;
    }

    @Test
    void windowsPackStreamsAndStartWhereTheSentenceContextSays() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        List<int[][]> messages = Arrays.asList(
                new int[][] {ids(b, 4, 5, 6, e), ids(b, 7, e), ids(b, 8, 9, e)},
                new int[][] {ids(b, 10, e)});
        AdapterTraining.Options tiny = new AdapterTraining.Options(1, 0.01f, 1e-4f, 0.1, 0, 1, 1);
        for (boolean reset : new boolean[] {true, false}) {
            AdapterTraining loop = new AdapterTraining("toy", 3, reset, STATES, V, F, R, tiny);
            List<AdapterTraining.Window> windows = loop.windows(messages);
            // the training message's streams end to end in windows of 3 (reset: each sentence a stream,
            // reset 1 at its <bos>; carry: the message one stream, <bos> ... <eos> <bos> ... <eos>, as
            // stream training and the engine feed it); the held-out message in a window of its own
            int[][] tokens = reset ? new int[][] {{b, 4, 5}, {6, b, 7}, {b, 8, 9}, {b, 10, 0}}
                    : new int[][] {{b, 4, 5}, {6, e, b}, {7, e, b}, {8, 9, 0}, {b, 10, 0}};
            int[][] targets = reset ? new int[][] {{4, 5, 6}, {e, 7, e}, {8, 9, e}, {10, e, 0}}
                    : new int[][] {{4, 5, 6}, {e, b, 7}, {e, b, 8}, {9, e, 0}, {10, e, 0}};
            float[][] resets = reset ? new float[][] {{1, 0, 0}, {0, 1, 0}, {1, 0, 0}, {1, 0, 0}}
                    : new float[][] {{1, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {1, 0, 0}};
            int held = tokens.length - 1;
            assertEquals(tokens.length, windows.size());
            for (int i = 0; i < windows.size(); i++) {
                AdapterTraining.Window w = windows.get(i);
                boolean padded = i == held || (!reset && i == held - 1);
                assertArrayEquals(tokens[i], w.tokens, "window " + i);
                assertArrayEquals(targets[i], w.targets, "window " + i);
                assertArrayEquals(resets[i], w.reset, "window " + i);
                assertArrayEquals(padded ? new float[] {1, 1, 0} : new float[] {1, 1, 1}, w.mask, "window " + i);
                assertEquals(padded ? 2 : 3, w.real);
                assertEquals(i != 0 && i != held, w.continues, (reset ? "reset" : "carry") + " window " + i);
                assertEquals(i == held, w.heldOut);
            }
            // pass 0 scores the held-out window from zeros; epoch 1 chains the training windows' states
            // (recording them), then scores the held-out window from the start pass 0 recorded
            ToyTrainer trainer = new ToyTrainer(V, F, R, 3, STATES, 7);
            AdapterTraining.Result result = loop.run(trainer, messages);
            assertEquals(1, result.epochLosses.size(), result.message);
            float[][] heldStart = trainer.starts.get(0);
            for (float[] s : heldStart) assertArrayEquals(new float[s.length], s);
            assertEquals(0f, trainer.learningRates.get(0));
            assertArrayEquals(resets[held], trainer.resets.get(0));
            for (int i = 0; i < held; i++) {  // call 1 + i: epoch 1's update on window i
                float[][] start = trainer.starts.get(1 + i);
                if (i > 0) {
                    assertSame(trainer.ends.get(i), start, "window " + i);
                } else {
                    for (float[] s : start) assertArrayEquals(new float[s.length], s);
                }
                assertArrayEquals(resets[i], trainer.resets.get(1 + i), "window " + i);
                assertEquals(0.01f, trainer.learningRates.get(1 + i));
            }
            assertSame(heldStart, trainer.starts.get(1 + held), "held-out score");
            assertEquals(0f, trainer.learningRates.get(1 + held));
            assertEquals(2 + held, trainer.starts.size());
        }
    }

    private static AdapterTraining tinyLoop(int window, boolean reset) {
        return new AdapterTraining("toy", window, reset, STATES, V, F, R, new AdapterTraining.Options(1, 0.01f, 1e-4f, 0.1, 0, 1, 1));
    }

    @Test
    void shortSentencesShareAWindowWithResetsAtTheirStarts() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        // 3 + 2 + 3 training positions fill one window of 8 exactly; the held-out message gets its own
        List<int[][]> messages = Arrays.asList(new int[][] {ids(b, 4, 5, e)}, new int[][] {ids(b, 6, e), ids(b, 7, 8, e)},
                new int[][] {ids(b, 9, e)});
        List<AdapterTraining.Window> windows = tinyLoop(8, true).windows(messages);
        assertEquals(2, windows.size());
        AdapterTraining.Window w = windows.get(0);
        assertArrayEquals(new int[] {b, 4, 5, b, 6, b, 7, 8}, w.tokens);
        assertArrayEquals(new int[] {4, 5, e, 6, e, 7, 8, e}, w.targets);
        assertArrayEquals(new float[] {1, 0, 0, 1, 0, 1, 0, 0}, w.reset);
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1, 1, 1}, w.mask);
        assertEquals(8, w.real);
        assertFalse(w.heldOut || w.continues);
        w = windows.get(1);
        assertArrayEquals(new int[] {b, 9, 0, 0, 0, 0, 0, 0}, w.tokens);
        assertArrayEquals(new int[] {9, e, 0, 0, 0, 0, 0, 0}, w.targets);
        assertArrayEquals(new float[] {1, 0, 0, 0, 0, 0, 0, 0}, w.reset);
        assertArrayEquals(new float[] {1, 1, 0, 0, 0, 0, 0, 0}, w.mask);
        assertTrue(w.heldOut);
        assertFalse(w.continues);
    }

    @Test
    void aSentenceLongerThanTheRoomLeftRunsOnIntoTheNextWindow() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        List<int[][]> messages = Arrays.asList(new int[][] {ids(b, 4, 5, e), ids(b, 6, 7, 8, 9, 10, e)}, new int[][] {ids(b, 11, e)},
                new int[][] {ids(b, 12, e)});
        AdapterTraining loop = tinyLoop(4, true);
        List<AdapterTraining.Window> windows = loop.windows(messages);
        assertEquals(4, windows.size());
        int[][] tokens = {{b, 4, 5, b}, {6, 7, 8, 9}, {10, b, 11, 0}};
        int[][] targets = {{4, 5, e, 6}, {7, 8, 9, 10}, {e, 11, e, 0}};
        float[][] resets = {{1, 0, 0, 1}, {0, 0, 0, 0}, {0, 1, 0, 0}};
        for (int i = 0; i < 3; i++) {
            AdapterTraining.Window w = windows.get(i);
            assertArrayEquals(tokens[i], w.tokens, "window " + i);
            assertArrayEquals(targets[i], w.targets, "window " + i);
            assertArrayEquals(resets[i], w.reset, "window " + i);
            assertEquals(i == 2 ? 3 : 4, w.real);
            assertEquals(i > 0, w.continues, "window " + i);
            assertFalse(w.heldOut);
        }
        // the sentence's second part starts from where its first part ended (no reset at position 0)
        ToyTrainer trainer = new ToyTrainer(V, F, R, 4, STATES, 7);
        loop.run(trainer, messages);
        assertSame(trainer.ends.get(1), trainer.starts.get(2));  // call 0 is pass 0's held-out score
        assertTrue(nonZero(trainer.starts.get(2)));
        assertEquals(0f, trainer.resets.get(2)[0]);
    }

    private static boolean nonZero(float[][] state) {
        for (float[] layer : state) {
            for (float value : layer) {
                if (value != 0f) return true;
            }
        }
        return false;
    }

    @Test
    void heldOutWindowsArePackedApartFromTrainingWindows() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        // 20 messages, the last 2 held out: 18 * 2 training positions, 2 * 2 held-out ones; all would fit one window of 64
        List<int[][]> messages = new ArrayList<>();
        for (int m = 0; m < 20; m++) messages.add(new int[][] {ids(b, 4 + m % 12, e)});
        List<AdapterTraining.Window> windows = tinyLoop(64, true).windows(messages);
        assertEquals(2, windows.size());
        assertFalse(windows.get(0).heldOut);
        assertEquals(36, windows.get(0).real);
        AdapterTraining.Window held = windows.get(1);
        assertTrue(held.heldOut);
        assertFalse(held.continues, "the held-out part starts from zero states");
        assertEquals(4, held.real);
        assertArrayEquals(new int[] {b, 4 + 18 % 12, b, 4 + 19 % 12}, Arrays.copyOf(held.tokens, 4));
        assertArrayEquals(new int[] {4 + 18 % 12, e, 4 + 19 % 12, e}, Arrays.copyOf(held.targets, 4));
        assertArrayEquals(new float[] {1, 0, 1, 0}, Arrays.copyOf(held.reset, 4));
    }

    @Test
    void onlyTheLastWindowOfEachPartIsPadded() {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        for (boolean reset : new boolean[] {true, false}) {
            AdapterTraining loop = tinyLoop(T, reset);
            List<AdapterTraining.Window> windows = loop.windows(messages);
            int firstHeldOut = messages.size() - loop.heldOutMessages(messages.size());
            for (boolean heldOut : new boolean[] {false, true}) {
                // the part's positions, as its streams give them (carry: a message's sentences as one)
                List<Integer> tokens = new ArrayList<>(), targets = new ArrayList<>();
                List<Float> resets = new ArrayList<>();
                for (int m = heldOut ? firstHeldOut : 0; m < (heldOut ? messages.size() : firstHeldOut); m++) {
                    List<List<Integer>> streams = new ArrayList<>();
                    for (int[] ids : messages.get(m)) {
                        if (reset || streams.isEmpty()) streams.add(new ArrayList<>());
                        for (int id : ids) streams.get(streams.size() - 1).add(id);
                    }
                    for (List<Integer> stream : streams) {
                        for (int p = 0; p + 1 < stream.size(); p++) {
                            tokens.add(stream.get(p));
                            targets.add(stream.get(p + 1));
                            resets.add(p == 0 ? 1f : 0f);
                        }
                    }
                }
                List<AdapterTraining.Window> part = new ArrayList<>();
                for (AdapterTraining.Window w : windows) if (w.heldOut == heldOut) part.add(w);
                assertEquals((tokens.size() + T - 1) / T, part.size());
                for (int i = 0; i < part.size(); i++) {
                    AdapterTraining.Window w = part.get(i);
                    int real = i < part.size() - 1 ? T : tokens.size() - T * i;
                    assertEquals(real, w.real, "window " + i);
                    assertEquals(i > 0, w.continues);
                    for (int t = 0; t < T; t++) {
                        boolean in = t < real;
                        assertEquals(in ? 1f : 0f, w.mask[t]);
                        assertEquals(in ? tokens.get(T * i + t) : 0, w.tokens[t]);
                        assertEquals(in ? targets.get(T * i + t) : 0, w.targets[t]);
                        assertEquals(in ? resets.get(T * i + t) : 0f, w.reset[t]);
                    }
                }
            }
            assertTrue(windows.get(0).real == T && windows.size() > 40);
        }
    }

    @Test
    void carryResetsOnlyAtMessageStarts() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        List<int[][]> messages = Arrays.asList(new int[][] {ids(b, 4, e), ids(b, 5, 6, e)}, new int[][] {ids(b, 7, e)},
                new int[][] {ids(b, 8, e)});
        List<AdapterTraining.Window> carry = tinyLoop(4, false).windows(messages);
        assertEquals(3, carry.size());
        assertArrayEquals(new int[] {b, 4, e, b}, carry.get(0).tokens);
        assertArrayEquals(new int[] {4, e, b, 5}, carry.get(0).targets);
        assertArrayEquals(new float[] {1, 0, 0, 0}, carry.get(0).reset, "the second sentence goes on from the first");
        assertArrayEquals(new int[] {5, 6, b, 7}, carry.get(1).tokens);
        assertArrayEquals(new int[] {6, e, 7, e}, carry.get(1).targets);
        assertArrayEquals(new float[] {0, 0, 1, 0}, carry.get(1).reset, "a new message starts from zero states");
        // the same text with reset: every sentence starts from zero states
        List<AdapterTraining.Window> reset = tinyLoop(4, true).windows(messages);
        assertArrayEquals(new int[] {b, 4, b, 5}, reset.get(0).tokens);
        assertArrayEquals(new float[] {1, 0, 1, 0}, reset.get(0).reset);
        assertArrayEquals(new int[] {6, b, 7, 0}, reset.get(1).tokens);
        assertArrayEquals(new float[] {0, 1, 0, 0}, reset.get(1).reset);
    }

    @Test
    void aResetInsideAWindowTrainsTwoSentencesFromZeroStates() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        int[] first = ids(b, 4, 9, e), second = ids(b, 7, 12, 5, e);  // 3 and 4 positions, then one padded
        int window = 8;
        ToyTrainer toy = new ToyTrainer(V, F, R, window, STATES, 7);
        Random random = new Random(5);
        float[] down = new float[F * R], up = new float[R * V], bias = new float[V];
        for (int i = 0; i < down.length; i++) down[i] = (float) random.nextGaussian() * 0.3f;
        for (int i = 0; i < up.length; i++) up[i] = (float) random.nextGaussian() * 0.3f;
        AdapterState adapter = AdapterState.start(bias, down, up);
        float[][] start = new float[STATES.length][];  // a start state the reset at position 0 throws away
        for (int k = 0; k < STATES.length; k++) {
            start[k] = new float[STATES[k]];
            for (int i = 0; i < STATES[k]; i++) start[k][i] = (float) random.nextGaussian();
        }
        int[] tokens = new int[window], targets = new int[window];
        float[] mask = new float[window], resets = new float[window];
        int at = 0;
        for (int[] ids : new int[][] {first, second}) {
            for (int p = 0; p + 1 < ids.length; p++, at++) {
                tokens[at] = ids[p];
                targets[at] = ids[p + 1];
                mask[at] = 1f;
                resets[at] = p == 0 ? 1f : 0f;
            }
        }
        Trainer.Result packed = toy.train(tokens, targets, mask, resets, start, adapter, 0f, 0f);
        Trainer.Result a = alone(toy, first, window, adapter), c = alone(toy, second, window, adapter);
        assertEquals((3.0 * a.loss + 4.0 * c.loss) / 7.0, packed.loss, 1e-5);
        for (int k = 0; k < STATES.length; k++) assertArrayEquals(c.state[k], packed.state[k], 1e-6f);
        // without the reset in the middle the second sentence would run on from the first: another loss
        float[] once = new float[window];
        once[0] = 1f;
        assertTrue(Math.abs(toy.train(tokens, targets, mask, once, start, adapter, 0f, 0f).loss - packed.loss) > 1e-3);
    }

    /** {@code ids} alone in a window from zero states. */
    private static Trainer.Result alone(ToyTrainer toy, int[] ids, int window, AdapterState adapter) {
        int[] tokens = new int[window], targets = new int[window];
        float[] mask = new float[window], resets = new float[window];
        for (int p = 0; p + 1 < ids.length; p++) {
            tokens[p] = ids[p];
            targets[p] = ids[p + 1];
            mask[p] = 1f;
        }
        resets[0] = 1f;
        return toy.train(tokens, targets, mask, resets, StepModel.zeros(STATES), adapter, 0f, 0f);
    }

    @Test
    void sentencesAreSplitAsTheTokenizationSpecSays() throws Exception {
        Tokenizer tokenizer = Tokenizer.standard();
        assertEquals(Arrays.asList("Hi there.", " How are you?", " ok"), AdapterTraining.sentences("Hi there. How are you? ok", tokenizer));
        assertEquals(Arrays.asList("wait.", ".", ".", "what"), AdapterTraining.sentences("wait...what", tokenizer));
        assertEquals(Arrays.asList("ok．", "fine"), AdapterTraining.sentences("ok．fine", tokenizer));
        assertEquals(Arrays.asList("3.5 miles"), AdapterTraining.sentences("3.5 miles", tokenizer));
        // the Python twin's split_sentences on the same texts (test_java_core.py writes them), as tokens
        File cases = new File(new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter"), "sentences.json");
        JSONObject python = Fixtures.json(cases);
        assertTrue(python.length() >= 5);
        for (Iterator<String> texts = python.keys(); texts.hasNext(); ) {
            String text = texts.next();
            List<List<String>> mine = new ArrayList<>();
            for (String sentence : AdapterTraining.sentences(text, tokenizer)) {
                List<String> tokens = tokenizer.tokenize(sentence, true);
                if (!tokens.isEmpty()) mine.add(tokens);
            }
            List<List<String>> theirs = new ArrayList<>();
            JSONArray sentences = python.getJSONArray(text);
            for (int i = 0; i < sentences.length(); i++) theirs.add(Fixtures.strings(sentences.getJSONArray(i)));
            assertEquals(theirs, mine, text);
        }
    }

    @Test
    void encodesMessagesAsFramedSentences() throws Exception {
        Bundle bundle = Bundle.load(BundleFiles.directory(Fixtures.path("kblm.bundle")));
        Vocabulary vocab = bundle.vocabulary;
        List<int[][]> encoded = AdapterTraining.encode(Arrays.asList("See you at the station. i think the zzyzx is late", " \n", "!!"),
                vocab, Tokenizer.standard());
        assertEquals(3, encoded.size());
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        assertArrayEquals(new int[] {b, vocab.id("see"), vocab.id("you"), vocab.id("at"), vocab.id("the"), vocab.id("station"),
            vocab.id("."), e}, encoded.get(0)[0]);
        assertArrayEquals(new int[] {b, vocab.id("i"), vocab.id("think"), vocab.id("the"), Vocabulary.UNK_ID, vocab.id("is"),
            vocab.id("late"), e}, encoded.get(0)[1]);
        assertEquals(0, encoded.get(1).length, "a message with no token has no sentence");
        assertEquals(2, encoded.get(2).length);
        assertArrayEquals(new int[] {b, vocab.id("!"), e}, encoded.get(2)[1]);
    }

    @Test
    void aShippedAdapterFitsItsBundleFile() throws Exception {
        // the toy bundle's shapes (with the adapter block test_java_core.py gives it if it has none),
        // its vocabulary, a user who keeps saying the same things, and the toy trainer in its sizes
        File fixture = new File(Fixtures.path("kblm.bundle").getParentFile(), "adapter");
        Bundle bundle = Bundle.load(BundleFiles.directory(new File(fixture, "bundle")));
        String[] said = {"see you at the station tomorrow .", "i think the train is late again !", "we met at the park tonight",
            "are you at the station ?", "don't be late for the train ."};
        Random random = new Random(3);
        List<String> texts = new ArrayList<>();
        for (int m = 0; m < 120; m++) texts.add(said[random.nextInt(said.length)] + " " + said[random.nextInt(said.length)]);
        List<int[][]> messages = AdapterTraining.encode(texts, bundle.vocabulary, Tokenizer.standard());
        AdapterTraining loop = AdapterTraining.forBundle(bundle, AdapterTraining.Options.DEFAULT);
        ToyTrainer trainer = new ToyTrainer(bundle.vocabularySize, bundle.adapterFeatureSize(), bundle.adapterRank(),
                bundle.adapterWindow(), bundle.stateSizes, 11);
        AdapterTraining.Result result = loop.run(trainer, messages);
        assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome, result.message);
        assertNotNull(result.adapter);
        File saved = new File(dir, "user.kbad");
        result.adapter.save(saved);
        Adapter loaded = Adapter.load(saved, bundle);
        for (int i = 0; i < 3; i++) {
            float[] want = result.adapter.arrays()[i].clone();
            for (int k = 0; k < want.length; k++) want[k] = Adapter.fromHalf(Adapter.toHalf(want[k]));
            assertArrayEquals(want, loaded.arrays()[i], Adapter.ARRAYS[i]);
        }
        assertEquals(result.bestEpoch, loaded.training.getInt("best_epoch"));
    }

    // -- the forgetting guard (§18.3) ---------------------------------------------------------

    /** The user of the guard's tests: the chain keepsTheBestEpoch... trains on (epoch 3 ships, lr 0.02). */
    private static final AdapterTraining.Options GUARDED = TOY.withLearningRate(0.02f);

    /** A general sample unlike the user: another chain, and every other word one outside the vocabulary (<unk>). */
    private static List<int[][]> hostile() {
        List<int[][]> out = chain(40, 5, 5, 0.8);
        for (int[][] message : out) {
            for (int[] ids : message) {
                for (int i = 1; i + 1 < ids.length; i += 2) ids[i] = Vocabulary.UNK_ID;
            }
        }
        return out;
    }

    /** {@code adapter} as a trainer's input (zero moments). */
    private static AdapterState state(Adapter adapter) {
        return AdapterState.start(adapter.bias, adapter.down, adapter.up);
    }

    private static AdapterState zeroState() {
        return AdapterState.start(new float[V], new float[F * R], new float[R * V]);
    }

    /** The general loss of {@code state} scored apart from the loop: the general part's windows chained from zero states, learning rate 0. */
    private static double generalLoss(AdapterTraining loop, List<int[][]> general, AdapterState state) {
        ToyTrainer scorer = trainer();
        double sum = 0, n = 0;
        float[][] previous = null;
        for (AdapterTraining.Window w : loop.generalWindows(general)) {
            Trainer.Result out = scorer.train(w.tokens, w.targets, w.mask, w.reset, w.continues ? previous : StepModel.zeros(STATES),
                    state, 0f, 0f);
            previous = out.state;
            sum += (double) out.loss * w.real;
            n += w.real;
        }
        return sum / n;
    }

    /** The blend of §18.3 computed here: bias and up times {@code a}, down as is, each value rounded to float16. */
    private static AdapterState blended(Adapter adapter, double a) {
        float[] bias = adapter.bias.clone(), up = adapter.up.clone();
        for (int k = 0; k < bias.length; k++) bias[k] = Adapter.fromHalf(Adapter.toHalf((float) (bias[k] * a)));
        for (int k = 0; k < up.length; k++) up[k] = Adapter.fromHalf(Adapter.toHalf((float) (up[k] * a)));
        return AdapterState.start(bias, adapter.down.clone(), up);
    }

    private static void assertSameRun(AdapterTraining.Result expected, AdapterTraining.Result actual) {
        assertEquals(expected.outcome, actual.outcome);
        assertEquals(expected.message, actual.message);
        assertEquals(expected.epochLosses, actual.epochLosses);
        assertEquals(expected.bestEpoch, actual.bestEpoch);
        assertEquals(expected.figures().toString(), actual.figures().toString());
        for (int i = 0; i < 3; i++) assertArrayEquals(expected.adapter.arrays()[i], actual.adapter.arrays()[i], Adapter.ARRAYS[i]);
        assertEquals(expected.adapter.training.toString(), actual.adapter.training.toString());
        assertTrue(Double.isNaN(actual.baseGeneralLoss) && Double.isNaN(actual.generalLoss) && Double.isNaN(actual.generalRise()));
        assertNull(actual.guard);
        assertEquals(1.0, actual.blend);
        assertFalse(actual.figures().has("guard"));
    }

    @Test
    void withoutAGeneralSampleOrWithTheGuardOffNoGuardRuns() {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        ToyTrainer plain = trainer();
        AdapterTraining.Result before = loop(GUARDED).run(plain, messages);  // the two-argument run: no guard
        assertEquals(AdapterTraining.Outcome.SHIPPED, before.outcome, before.message);
        List<int[][]> noTargets = new ArrayList<>();  // messages with no sentence (no token): no target to score
        for (int m = 0; m < 5; m++) noTargets.add(new int[0][]);
        Object[][] cases = {  // options, general sample
            {GUARDED, new ArrayList<int[][]>()},
            {GUARDED, noTargets},
            {GUARDED.withMaxForgetting(Double.NaN), hostile()},
        };
        for (Object[] c : cases) {
            ToyTrainer trainer = trainer();
            @SuppressWarnings("unchecked")
            AdapterTraining.Result result = loop((AdapterTraining.Options) c[0]).run(trainer, messages, (List<int[][]>) c[1]);
            assertSameRun(before, result);
            assertEquals(plain.calls, trainer.calls, "no general window is scored");
        }
        // the options: 2% by default, NaN turns the guard off, anything else must be a finite rise >= 0
        assertEquals(0.02, AdapterTraining.Options.DEFAULT.maxForgetting);
        assertTrue(AdapterTraining.Options.DEFAULT.guarded() && GUARDED.withEpochs(3).withSeed(4).guarded());
        assertEquals(0.02, GUARDED.withEpochs(3).withL2(0f).withLearningRate(1f).withSeed(9).maxForgetting);
        assertFalse(GUARDED.withMaxForgetting(Double.NaN).guarded());
        assertEquals(0.0, GUARDED.withMaxForgetting(0).maxForgetting);
        for (double bad : new double[] {-0.01, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> GUARDED.withMaxForgetting(bad));
            assertTrue(e.getMessage().startsWith("max_forgetting must be finite and >= 0 (NaN: no guard)"), e.getMessage());
        }
    }

    @Test
    void anAdapterWithinTheLimitShipsAsTrained() throws Exception {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        List<int[][]> general = chain(40, 5, 1, 0.8);  // the user's own chain: the adapter helps it
        AdapterTraining.Result unguarded = loop(GUARDED).run(trainer(), messages);
        AdapterTraining loop = loop(GUARDED);  // the default limit, 2%
        AdapterTraining.Result result = loop.run(trainer(), messages, general);
        assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome, result.message);
        for (int i = 0; i < 3; i++) assertArrayEquals(unguarded.adapter.arrays()[i], result.adapter.arrays()[i], "as trained");
        double base = generalLoss(loop, general, zeroState()), trained = generalLoss(loop, general, state(unguarded.adapter));
        assertEquals(base, result.baseGeneralLoss, 1e-12);
        assertEquals(trained, result.trainedGeneralLoss, 1e-12);
        assertEquals(trained, result.generalLoss, 1e-12);
        assertTrue(trained <= base * 1.02, trained + " vs " + base);
        assertEquals(trained / base - 1, result.generalRise(), 1e-12);
        assertEquals(1.0, result.blend);
        assertEquals(0.02, result.maxForgetting);
        assertEquals(result.bestLoss, result.shippedLoss);
        assertEquals("within the limit: shipped as trained", result.guard);
        assertEquals(String.format(java.util.Locale.ROOT, "%s; forgetting guard: within the limit: shipped as trained (general loss %.4f, "
                + "base %.4f)", unguarded.message, trained, base), result.message);
        JSONObject guard = result.adapter.training.getJSONObject("guard");
        assertEquals(base, guard.getDouble("base_general_loss"), 1e-12);
        assertEquals(trained, guard.getDouble("general_loss"), 1e-12);
        assertEquals(trained, guard.getDouble("trained_general_loss"), 1e-12);
        assertEquals(trained / base - 1, guard.getDouble("rise"), 1e-12);
        assertEquals(1.0, guard.getDouble("blend"));
        assertEquals(0.02, guard.getDouble("limit"));
        assertEquals("within the limit: shipped as trained", guard.getString("what"));
    }

    @Test
    void anAdapterOverTheLimitIsBlendedByBisection() throws Exception {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        List<int[][]> general = hostile();
        double limit = 0.1;
        AdapterTraining.Result unguarded = loop(GUARDED).run(trainer(), messages);
        Adapter trained = unguarded.adapter;
        AdapterTraining loop = loop(GUARDED.withMaxForgetting(limit));
        AdapterTraining.Result result = loop.run(trainer(), messages, general);
        assertEquals(AdapterTraining.Outcome.SHIPPED, result.outcome, result.message);
        double base = generalLoss(loop, general, zeroState()), ceiling = base * (1 + limit);
        assertEquals(base, result.baseGeneralLoss, 1e-12);
        double asTrained = generalLoss(loop, general, state(trained));
        assertTrue(asTrained > ceiling, "the trained adapter is over the limit: " + asTrained + " vs " + ceiling);
        assertEquals(asTrained, result.trainedGeneralLoss, 1e-12);
        // the bisection, here: lo 0, hi 1, five times mid = (lo + hi) / 2, within the limit: lo = mid, else hi = mid
        double lo = 0, hi = 1;
        for (int i = 0; i < 5; i++) {
            double mid = (lo + hi) / 2;
            if (generalLoss(loop, general, blended(trained, mid)) <= ceiling) lo = mid;
            else hi = mid;
        }
        assertTrue(lo > 0 && lo < 1, "a blend between the base and the adapter: " + lo);
        assertEquals(lo, result.blend);
        // the largest k/32 within the limit (the loss is convex in a)
        assertTrue(generalLoss(loop, general, blended(trained, lo)) <= ceiling);
        assertTrue(generalLoss(loop, general, blended(trained, lo + 1.0 / 32)) > ceiling);
        // the arrays that ship: bias a and up a rounded to float16, down as trained
        AdapterState expected = blended(trained, lo);
        assertArrayEquals(expected.bias(), result.adapter.bias);
        assertArrayEquals(expected.up(), result.adapter.up);
        assertArrayEquals(trained.down, result.adapter.down);
        assertFalse(Arrays.equals(trained.up, result.adapter.up));
        double shipped = generalLoss(loop, general, expected);
        assertEquals(shipped, result.generalLoss, 1e-12);
        assertEquals(shipped / base - 1, result.generalRise(), 1e-12);
        assertTrue(result.generalRise() <= limit);
        // the blend still beats the base on the held-out tail; its held-out loss is recorded
        assertEquals(unguarded.bestLoss, result.bestLoss);
        assertEquals(heldOutLoss(loop, messages, result.adapter), result.shippedLoss, 1e-6);
        assertTrue(result.shippedLoss < result.baseLoss && result.shippedLoss > result.bestLoss);
        String a = java.math.BigDecimal.valueOf(lo).stripTrailingZeros().toPlainString();
        String what = String.format(java.util.Locale.ROOT, "its general loss rose %.1f%% as trained, over the 10.0%% limit: shipped at %s "
                + "of its strength", (asTrained / base - 1) * 100, a);
        assertEquals(what, result.guard);
        assertEquals(String.format(java.util.Locale.ROOT, "%s; forgetting guard: %s (general loss %.4f, base %.4f; held-out loss %.4f at "
                + "that strength)", unguarded.message, what, shipped, base, result.shippedLoss), result.message);
        JSONObject figures = result.adapter.training;
        assertEquals(result.shippedLoss, figures.getDouble("held_out_loss"));
        JSONObject guard = figures.getJSONObject("guard");
        assertEquals(lo, guard.getDouble("blend"));
        assertEquals(shipped, guard.getDouble("general_loss"), 1e-12);
        assertEquals(asTrained / base - 1, guard.getDouble("trained_rise"), 1e-12);
        assertEquals(limit, guard.getDouble("limit"));
        assertEquals(what, guard.getString("what"));
    }

    @Test
    void aLimitNoBlendMeetsShipsNothing() throws Exception {
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        List<int[][]> general = hostile();
        AdapterTraining.Result unguarded = loop(GUARDED).run(trainer(), messages);
        AdapterTraining loop = loop(GUARDED.withMaxForgetting(0));
        ToyTrainer trainer = trainer();
        AdapterTraining.Result result = loop.run(trainer, messages, general);
        assertEquals(AdapterTraining.Outcome.FORGOT, result.outcome, result.message);
        assertNull(result.adapter);
        assertFalse(result.shipped());
        assertEquals(0.0, result.blend);
        double base = generalLoss(loop, general, zeroState()), asTrained = generalLoss(loop, general, state(unguarded.adapter));
        for (double a = 0.5; a >= 1.0 / 32; a /= 2) {  // every point the bisection tried was over the limit
            assertTrue(generalLoss(loop, general, blended(unguarded.adapter, a)) > base, "a = " + a);
        }
        assertEquals(String.format(java.util.Locale.ROOT, "it forgot too much general text (its general loss rose %.1f%%, and still more "
                + "than 0.0%% at 0.03125 of it); the previous adapter stays", (asTrained / base - 1) * 100), result.message);
        assertFalse(result.message.contains("\n"));
        assertEquals(unguarded.epochLosses, result.epochLosses);
        assertEquals(base, result.generalLoss, 1e-12);  // as keyboard_lm records it: nothing ships, no rise
        assertEquals(0.0, result.generalRise(), 1e-12);
        JSONObject figures = result.figures();
        assertEquals("forgot", figures.getString("outcome"));
        assertEquals(0.0, figures.getJSONObject("guard").getDouble("blend"));
        // the guard's calls: G(1), then the five bisection points, each over the general windows
        int general0 = loop.generalWindows(general).size();
        List<AdapterTraining.Window> windows = loop.windows(messages);
        assertEquals(count(windows, true) + general0 + unguarded.epochLosses.size() * windows.size() + 6 * general0, trainer.calls);
    }

    /** A toy trainer that records what each call was fed: the window's positions, the learning rate, the adapter. */
    static final class Recording extends ToyTrainer {
        final List<String> windows = new ArrayList<>();
        final List<AdapterState> adapters = new ArrayList<>();

        Recording() {
            super(V, F, R, T, STATES, 7);
        }

        @Override
        public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                            float learningRate, float l2) {
            windows.add(key(tokens, targets, mask, reset));
            adapters.add(adapter);
            return super.train(tokens, targets, mask, reset, state, adapter, learningRate, l2);
        }
    }

    private static String key(int[] tokens, int[] targets, float[] mask, float[] reset) {
        return Arrays.toString(tokens) + Arrays.toString(targets) + Arrays.toString(mask) + Arrays.toString(reset);
    }

    private static String key(AdapterTraining.Window w) {
        return key(w.tokens, w.targets, w.mask, w.reset);
    }

    @Test
    void theGeneralSampleIsPackedOnItsOwnAndOnlyScored() {
        int b = Vocabulary.BOS_ID, e = Vocabulary.EOS_ID;
        // packed as the held-out tail is: the streams end to end in windows of T, only the last one padded
        List<int[][]> sample = Arrays.asList(new int[][] {ids(b, 4, 5, e), ids(b, 6, e)}, new int[][] {ids(b, 7, 8, 9, e)});
        for (boolean reset : new boolean[] {true, false}) {
            List<AdapterTraining.Window> packed = tinyLoop(4, reset).generalWindows(sample);
            // reset: each sentence a stream; carry: a message's sentences one stream (<bos> 4 5 <eos> <bos> 6 <eos>)
            int[][] tokens = reset ? new int[][] {{b, 4, 5, b}, {6, b, 7, 8}, {9, 0, 0, 0}}
                    : new int[][] {{b, 4, 5, e}, {b, 6, b, 7}, {8, 9, 0, 0}};
            float[][] resets = reset ? new float[][] {{1, 0, 0, 1}, {0, 1, 0, 0}, {0, 0, 0, 0}}
                    : new float[][] {{1, 0, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 0}};
            int[] real = reset ? new int[] {4, 4, 1} : new int[] {4, 4, 2};
            assertEquals(tokens.length, packed.size());
            for (int i = 0; i < packed.size(); i++) {
                AdapterTraining.Window w = packed.get(i);
                assertArrayEquals(tokens[i], w.tokens, "window " + i);
                assertArrayEquals(resets[i], w.reset, "window " + i);
                assertEquals(real[i], w.real, "window " + i);
                assertTrue(w.general && !w.heldOut);
                assertEquals(i > 0, w.continues);
            }
        }
        // a run: every call is a window of the user's parts or of the general part, never a mix; the
        // general windows are scored with learning rate 0 only, the first from zero states, each
        // later one from the one before (recorded in pass 0, reused by the guard)
        List<int[][]> messages = chain(100, 1, 1, 0.8);
        List<int[][]> general = hostile();
        AdapterTraining loop = loop(GUARDED.withMaxForgetting(0.1));
        Set<String> user = new HashSet<>(), sampled = new HashSet<>();
        for (AdapterTraining.Window w : loop.windows(messages)) user.add(key(w));
        List<AdapterTraining.Window> generalWindows = loop.generalWindows(general);
        for (AdapterTraining.Window w : generalWindows) sampled.add(key(w));
        assertTrue(Collections.disjoint(user, sampled), "the toy texts share no window");
        Recording trainer = new Recording();
        AdapterTraining.Result result = loop.run(trainer, messages, general);
        assertTrue(result.blend > 0 && result.blend < 1, result.message);
        List<Integer> generalCalls = new ArrayList<>();
        for (int i = 0; i < trainer.calls; i++) {
            String window = trainer.windows.get(i);
            assertTrue(user.contains(window) || sampled.contains(window), "call " + i + " is a window of one part");
            if (sampled.contains(window)) {
                generalCalls.add(i);
                assertEquals(0f, trainer.learningRates.get(i), "call " + i + ": general text is only scored");
            }
        }
        int g = generalWindows.size(), h = count(loop.windows(messages), true);
        assertEquals(g * (1 + 1 + 5), generalCalls.size(), "pass 0, G(1), five bisection points");
        for (int i = 0; i < g; i++) {
            int call = h + i;  // pass 0: the held-out tail, then the general part
            assertEquals(generalCalls.get(i).intValue(), call);
            assertEquals(key(generalWindows.get(i)), trainer.windows.get(call));
            AdapterState zero = trainer.adapters.get(call);
            for (float[] array : zero.params) assertArrayEquals(new float[array.length], array, "the zero adapter");
            if (i == 0) {
                for (float[] s : trainer.starts.get(call)) assertArrayEquals(new float[s.length], s);
            } else {
                assertSame(trainer.ends.get(call - 1), trainer.starts.get(call));
            }
            for (int pass = 1; pass <= 6; pass++) {  // the guard reuses the start states pass 0 recorded
                assertSame(trainer.starts.get(call), trainer.starts.get(generalCalls.get(pass * g + i)));
            }
        }
        // training starts afresh after pass 0 (no moments, no update counted from scoring the general text)
        AdapterState first = trainer.adapters.get(h + g);
        assertEquals(0f, first.stepCount);
        assertTrue(trainer.learningRates.get(h + g) > 0f);
        for (float[] array : first.m) assertArrayEquals(new float[array.length], array);
        assertArrayEquals(new float[V], first.bias());
        AdapterTraining.Result unguarded = loop(GUARDED).run(trainer(), messages);
        assertEquals(unguarded.epochLosses, result.epochLosses, "the general sample changes nothing in training");
    }
}

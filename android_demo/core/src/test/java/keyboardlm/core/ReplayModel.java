package keyboardlm.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.opentest4j.AssertionFailedError;

/**
 * A StepModel answered from a golden trace's model_steps: the log-probabilities the real
 * exported model gave the Python engine, in order. Every step must ask for exactly the
 * recorded id, from exactly the state the Python engine stepped from. The state step k
 * returns is filled with k + 1 (zeros: the empty context), so the incoming state names the
 * recorded step that produced it. keyboard_lm/phone/keyboard.py steps fed position p from the
 * output of the step that produced position p - 1 (after a rewind: the state its stack kept
 * before position p, which is that output), and from zeros at position 0 (reset, re-prime
 * beyond the stack) and at every bos when sentences reset ("reset" bundles). Which positions
 * an action steps follows from the trace: always the last (steps) ids of the new fed list.
 */
final class ReplayModel implements StepModel {
    private static final float CONSTRUCTION = -1;  // the state the engine's constructor got (reset discards it)
    private final List<Integer> ids = new ArrayList<>();
    private final List<float[]> logProbs = new ArrayList<>();
    private final int[] stateSizes;
    private final boolean resetAtSentenceStart;
    private final List<Integer> producers = new ArrayList<>();  // per fed position: the step whose output state follows it
    private boolean armed;
    private int cursor;
    private int position;  // fed position of the next step
    String context = "";

    ReplayModel(JSONArray steps, int[] stateSizes, boolean resetAtSentenceStart) throws JSONException {
        this.stateSizes = stateSizes;
        this.resetAtSentenceStart = resetAtSentenceStart;
        for (int i = 0; i < steps.length(); i++) {
            JSONObject step = steps.getJSONObject(i);
            ids.add(step.getInt("id"));
            ByteBuffer raw = ByteBuffer.wrap(Base64.getDecoder().decode(step.getString("log_probs"))).order(ByteOrder.LITTLE_ENDIAN);
            float[] vector = new float[raw.remaining() / 4];
            raw.asFloatBuffer().get(vector);
            logProbs.add(vector);
        }
    }

    /** From now on, steps are checked against and consume the recording (before: the engine's construction). */
    void arm() {
        armed = true;
    }

    /**
     * Before an action the trace recorded as keeping {@code kept} fed ids, feeding {@code fed}
     * more, with model steps {@code from}..{@code to}: those steps re-run the last positions.
     */
    void expect(int kept, int fed, int from, int to) {
        position = kept + fed - (to - from);
        if (position < 0 || position > producers.size() || from != cursor) {
            throw new AssertionFailedError(context + ": inconsistent trace (kept " + kept + ", fed " + fed + ", steps "
                    + from + ".." + to + " at step " + cursor + ", " + producers.size() + " ids fed)");
        }
        producers.subList(position, producers.size()).clear();
    }

    int cursor() {
        return cursor;
    }

    int recorded() {
        return ids.size();
    }

    @Override
    public int outputSize() {
        return logProbs.get(0).length;
    }

    @Override
    public float[][] zeroState() {
        return filled(0);
    }

    private float[][] filled(float value) {
        float[][] state = new float[stateSizes.length][];
        for (int i = 0; i < state.length; i++) {
            state[i] = new float[stateSizes[i]];
            Arrays.fill(state[i], value);
        }
        return state;
    }

    @Override
    public Step step(int token, float[][] state) {
        if (!armed) {  // the constructor's reset: the recording starts with the trace's own reset
            if (token != Vocabulary.BOS_ID) throw new AssertionFailedError("construction stepped " + token + ", not <bos>");
            return new Step(logProbs.get(0), filled(CONSTRUCTION));
        }
        if (cursor >= ids.size()) {
            throw new AssertionFailedError(context + ": the engine stepped id " + token + " after all " + ids.size() + " recorded steps");
        }
        if (ids.get(cursor) != token) {
            throw new AssertionFailedError(context + ": the engine stepped id " + token + ", the trace recorded id "
                    + ids.get(cursor) + " at model step " + cursor);
        }
        boolean empty = position == 0 || (token == Vocabulary.BOS_ID && resetAtSentenceStart);
        float expected = empty ? 0 : producers.get(position - 1) + 1;
        if (!Arrays.deepEquals(filled(expected), state)) {
            throw new AssertionFailedError(context + ": model step " + cursor + " (id " + token + " at fed position " + position
                    + ") got the state " + describe(state) + ", expected " + (empty ? "zeros" : "the output of step " + ((int) expected - 1)));
        }
        int k = cursor++;
        producers.add(k);
        position++;
        return new Step(logProbs.get(k), filled(k + 1));
    }

    private static String describe(float[][] state) {
        float first = state.length > 0 && state[0].length > 0 ? state[0][0] : Float.NaN;
        return first == 0 ? "zeros" : first == CONSTRUCTION ? "of the constructor's step" : "the output of step " + (int) (first - 1);
    }
}

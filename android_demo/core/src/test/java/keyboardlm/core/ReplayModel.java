package keyboardlm.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.opentest4j.AssertionFailedError;

/**
 * A StepModel answered from a golden trace's model_steps: the log-probabilities the real
 * exported model gave the Python engine, in order. Every step must ask for exactly the
 * recorded id; the state is opaque (zeros) since the recorded outputs already carry it.
 */
final class ReplayModel implements StepModel {
    private final List<Integer> ids = new ArrayList<>();
    private final List<float[]> logProbs = new ArrayList<>();
    private final int[] stateSizes;
    private boolean armed;
    private int cursor;
    String context = "";

    ReplayModel(JSONArray steps, int[] stateSizes) throws JSONException {
        this.stateSizes = stateSizes;
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
        float[][] state = new float[stateSizes.length][];
        for (int i = 0; i < state.length; i++) state[i] = new float[stateSizes[i]];
        return state;
    }

    @Override
    public Step step(int token, float[][] state) {
        if (!armed) {  // the constructor's reset: the recording starts with the trace's own reset
            if (token != Vocabulary.BOS_ID) throw new AssertionFailedError("construction stepped " + token + ", not <bos>");
            return new Step(logProbs.get(0), zeroState());
        }
        if (cursor >= ids.size()) {
            throw new AssertionFailedError(context + ": the engine stepped id " + token + " after all " + ids.size() + " recorded steps");
        }
        if (ids.get(cursor) != token) {
            throw new AssertionFailedError(context + ": the engine stepped id " + token + ", the trace recorded id "
                    + ids.get(cursor) + " at model step " + cursor);
        }
        return new Step(logProbs.get(cursor++), zeroState());
    }
}

package keyboardlm.core;

/**
 * The model behind the keyboard: one token and the recurrent state in, log-probabilities
 * over the vocabulary and the next state out (the bundle's "step" signature). The app
 * implements it with LiteRT; tests answer it from a golden trace's recorded outputs.
 * States are arrays the engine never modifies, so it keeps them on its rewind stack as is.
 */
public interface StepModel {
    /** The number of log-probabilities {@link #step} returns (the model's vocabulary size). */
    int outputSize();

    /** The empty context: one zero vector per state tensor, in the manifest's order. */
    float[][] zeroState();

    /** One zero vector per state tensor of these sizes (what {@link #zeroState} usually returns). */
    static float[][] zeros(int[] sizes) {
        float[][] state = new float[sizes.length][];
        for (int i = 0; i < sizes.length; i++) state[i] = new float[sizes[i]];
        return state;
    }

    /** Feeds {@code token} from {@code state}; returns a new Step (never modifies {@code state}). */
    Step step(int token, float[][] state);

    /** Releases what the model holds outside the Java heap (LiteRT's interpreter); no steps after. */
    default void close() {}

    /** One step's outputs. */
    final class Step {
        public final float[] logProbs;
        public final float[][] state;

        public Step(float[] logProbs, float[][] state) {
            this.logProbs = logProbs;
            this.state = state;
        }
    }
}

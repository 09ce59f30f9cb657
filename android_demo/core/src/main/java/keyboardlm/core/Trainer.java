package keyboardlm.core;

/**
 * One call of the bundle's "train" signature (docs/engine.md §18.2): the masked cross-entropy of
 * one window of T positions (as many sentences as fit, each starting from zero states where
 * reset is 1) before the update, one Adam update of the adapter, and the recurrent state after
 * the window's last real position. The app implements it with LiteRT (LiteRtTrainer); {@link
 * AdapterTraining} runs the loop of §18.3 over it. An implementation never modifies its
 * arguments and returns new arrays.
 */
public interface Trainer {
    /**
     * {@code tokens}, {@code targets}: int32 [T]; {@code mask}: float32 [T], 1 for a real position,
     * 0 for padding (token 0, target 0); {@code reset}: float32 [T], 1 where a sentence (or a
     * "carry" stream) starts: the state entering that position is zeros, so one window holds
     * several sentences (0 elsewhere and on padding); {@code state}: the states at the window's
     * start, in the manifest's order (each [size], fed as [1, size]); {@code adapter}: the arrays,
     * moments and step count; {@code learningRate} 0 leaves the arrays as they are (scoring).
     */
    Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter,
                 float learningRate, float l2);

    /** Releases what the trainer holds outside the Java heap (LiteRT's interpreter); no calls after. */
    default void close() {}

    /** One call's outputs: loss, next_* arrays, moments and step count, next_* states. */
    final class Result {
        /** The window's masked mean cross-entropy before the update (0 for an all-zero mask). */
        public final float loss;
        public final AdapterState adapter;
        public final float[][] state;

        public Result(float loss, AdapterState adapter, float[][] state) {
            this.loss = loss;
            this.adapter = adapter;
            this.state = state;
        }
    }
}

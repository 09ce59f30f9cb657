package keyboardlm.core;

/** A StepModel whose every answer is the uniform distribution (for loader and session tests). */
class ZeroModel implements StepModel {
    private final int size;
    private final int[] stateSizes;
    boolean closed;

    ZeroModel(int size, int[] stateSizes) {
        this.size = size;
        this.stateSizes = stateSizes;
    }

    @Override
    public int outputSize() {
        return size;
    }

    @Override
    public float[][] zeroState() {
        return StepModel.zeros(stateSizes);
    }

    @Override
    public Step step(int token, float[][] state) {
        float[] logProbs = new float[size];
        java.util.Arrays.fill(logProbs, (float) -Math.log(size));
        return new Step(logProbs, zeroState());
    }

    @Override
    public void close() {
        closed = true;
    }
}

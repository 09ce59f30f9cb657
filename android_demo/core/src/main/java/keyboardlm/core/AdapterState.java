package keyboardlm.core;

/**
 * What one call of the train signature takes and gives back besides the text and the recurrent
 * state (docs/engine.md §18.2): the adapter's three arrays, their Adam moments m and v (same
 * shapes) and the number of updates made so far. Arrays are in {@link Adapter#ARRAYS} order
 * (bias [V], down [F, r], up [r, V], row-major and flat). Nobody modifies them once made: a
 * {@link Trainer} returns new arrays, so the training loop keeps an earlier epoch's state as is.
 */
public final class AdapterState {
    public final float[][] params;
    public final float[][] m;
    public final float[][] v;
    /** step_count: updates made so far (float32, as the signature takes it). */
    public final float stepCount;

    public AdapterState(float[][] params, float[][] m, float[][] v, float stepCount) {
        if (params.length != 3 || m.length != 3 || v.length != 3) {
            throw new IllegalArgumentException("an adapter state has three arrays, three m and three v moments");
        }
        for (int i = 0; i < 3; i++) {
            if (m[i].length != params[i].length || v[i].length != params[i].length) {
                throw new IllegalArgumentException(Adapter.ARRAYS[i] + ": its moments differ in size from it");
            }
        }
        this.params = params;
        this.m = m;
        this.v = v;
        this.stepCount = stepCount;
    }

    /** The start of a run: these arrays, zero moments, no update made (§18.3). */
    public static AdapterState start(float[] bias, float[] down, float[] up) {
        float[][] params = {bias, down, up};
        float[][] m = new float[3][], v = new float[3][];
        for (int i = 0; i < 3; i++) {
            m[i] = new float[params[i].length];
            v[i] = new float[params[i].length];
        }
        return new AdapterState(params, m, v, 0f);
    }

    public float[] bias() {
        return params[0];
    }

    public float[] down() {
        return params[1];
    }

    public float[] up() {
        return params[2];
    }

    /** True if every parameter is finite (the loop throws away an epoch that makes one NaN or infinite, §18.3). */
    public boolean finite() {
        for (float[] array : params) {
            for (float value : array) {
                if (Float.isNaN(value) || Float.isInfinite(value)) return false;
            }
        }
        return true;
    }
}

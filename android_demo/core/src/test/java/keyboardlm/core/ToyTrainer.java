package keyboardlm.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A test double for LiteRT's train signature (LiteRtTrainer; LiteRT does not run here): the math
 * of docs/engine.md §18.2 in plain Java on a toy frozen base model, so the training loop's
 * decisions are made on real losses and real Adam updates.
 *
 * The toy base: state[0] (any size S) runs s' = tanh(Q s + G[token]); the features the output
 * layer reads are f = tanh(P s + E[token]) (size F); further states decay towards the features'
 * mean; base logits = f W + b. Every state entering a position with reset 1 is zeros (times
 * 1 - reset, as export/adapter_model.py does: a new sentence); a padded position (mask 0) holds
 * the state. Then, as §18.2:
 * logits += (f down) up + bias; loss = masked mean cross-entropy before the update (0 for an
 * all-zero mask); G = (P - Y) mask / max(sum mask, 1); grad bias = sum G, grad up = Z^T G,
 * grad down = f^T (G up^T), each + l2 * parameter; one Adam step (0.9, 0.999, 1e-8).
 * Computed in double, returned as float, like a float32 graph up to rounding.
 */
class ToyTrainer implements Trainer {
    static final double BETA1 = 0.9, BETA2 = 0.999, EPSILON = 1e-8;

    final int vocabularySize, featureSize, rank, window;
    final int[] stateSizes;
    private final double[][] q, g, p, e, w;
    private final double[] b;
    /** Every call's start states, reset flags, end states and learning rate, in order (tests check what the loop fed). */
    final List<float[][]> starts = new ArrayList<>();
    final List<float[]> resets = new ArrayList<>();
    final List<float[][]> ends = new ArrayList<>();
    final List<Float> learningRates = new ArrayList<>();
    int calls;

    ToyTrainer(int vocabularySize, int featureSize, int rank, int window, int[] stateSizes, long seed) {
        this.vocabularySize = vocabularySize;
        this.featureSize = featureSize;
        this.rank = rank;
        this.window = window;
        this.stateSizes = stateSizes.clone();
        Random random = new Random(seed);
        int s = stateSizes[0];
        q = gaussian(random, s, s, 0.5 / Math.sqrt(s));
        g = gaussian(random, vocabularySize, s, 1.0);
        p = gaussian(random, featureSize, s, 1.0 / Math.sqrt(s));
        e = gaussian(random, vocabularySize, featureSize, 1.0);
        w = gaussian(random, featureSize, vocabularySize, 1.0 / Math.sqrt(featureSize));
        b = gaussian(random, 1, vocabularySize, 0.5)[0];
    }

    private static double[][] gaussian(Random random, int rows, int columns, double deviation) {
        double[][] out = new double[rows][columns];
        for (double[] row : out) {
            for (int j = 0; j < columns; j++) row[j] = random.nextGaussian() * deviation;
        }
        return out;
    }

    @Override
    public Result train(int[] tokens, int[] targets, float[] mask, float[] reset, float[][] state, AdapterState adapter, float learningRate,
                        float l2) {
        calls++;
        starts.add(state);
        resets.add(reset);
        learningRates.add(learningRate);
        if (tokens.length != window || targets.length != window || mask.length != window || reset.length != window) {
            throw new IllegalArgumentException("window");
        }
        int v = vocabularySize, f = featureSize, r = rank, s0 = stateSizes[0];
        float[] bias = adapter.params[0], down = adapter.params[1], up = adapter.params[2];
        double[][] features = new double[window][f];
        double[][] current = new double[state.length][];
        for (int k = 0; k < state.length; k++) {
            current[k] = new double[state[k].length];
            for (int i = 0; i < state[k].length; i++) current[k][i] = state[k][i];
        }
        double n = 0;
        for (float m : mask) n += m;
        double[][] grad = {new double[v], new double[f * r], new double[r * v]};
        double loss = 0;
        double scale = 1.0 / Math.max(n, 1.0);
        for (int t = 0; t < window; t++) {
            for (double[] layer : current) {  // a stream starts here: from zero states
                for (int i = 0; i < layer.length; i++) layer[i] *= 1.0 - reset[t];
            }
            if (mask[t] == 0f) continue;  // a padded position: the state holds, nothing is learned
            int token = tokens[t];
            double[] s = current[0], next = new double[s0];
            for (int i = 0; i < s0; i++) {
                double sum = g[token][i];
                for (int j = 0; j < s0; j++) sum += q[i][j] * s[j];
                next[i] = Math.tanh(sum);
            }
            double[] x = features[t];
            double mean = 0;
            for (int i = 0; i < f; i++) {
                double sum = e[token][i];
                for (int j = 0; j < s0; j++) sum += p[i][j] * s[j];
                x[i] = Math.tanh(sum);
                mean += x[i] / f;
            }
            current[0] = next;
            for (int k = 1; k < current.length; k++) {
                for (int i = 0; i < current[k].length; i++) current[k][i] = 0.5 * current[k][i] + 0.5 * mean;
            }
            double[] z = new double[r];
            for (int j = 0; j < r; j++) {
                for (int i = 0; i < f; i++) z[j] += x[i] * down[i * r + j];
            }
            double[] logits = new double[v];
            double max = Double.NEGATIVE_INFINITY;
            for (int o = 0; o < v; o++) {
                double sum = b[o] + bias[o];
                for (int i = 0; i < f; i++) sum += x[i] * w[i][o];
                for (int j = 0; j < r; j++) sum += z[j] * up[j * v + o];
                logits[o] = sum;
                max = Math.max(max, sum);
            }
            double total = 0;
            for (int o = 0; o < v; o++) total += Math.exp(logits[o] - max);
            double logTotal = max + Math.log(total);
            loss += (logTotal - logits[targets[t]]) * mask[t] * scale;
            double[] gt = new double[v];
            for (int o = 0; o < v; o++) gt[o] = (Math.exp(logits[o] - logTotal) - (o == targets[t] ? 1 : 0)) * mask[t] * scale;
            for (int o = 0; o < v; o++) grad[0][o] += gt[o];
            for (int j = 0; j < r; j++) {
                double back = 0;  // (G up^T)[j]
                for (int o = 0; o < v; o++) {
                    grad[2][j * v + o] += z[j] * gt[o];
                    back += gt[o] * up[j * v + o];
                }
                for (int i = 0; i < f; i++) grad[1][i * r + j] += x[i] * back;
            }
        }
        float[][] params = new float[3][], m = new float[3][], vs = new float[3][];
        double step = adapter.stepCount + 1.0;
        double correction1 = 1 - Math.pow(BETA1, step), correction2 = 1 - Math.pow(BETA2, step);
        for (int a = 0; a < 3; a++) {
            float[] old = adapter.params[a];
            params[a] = new float[old.length];
            m[a] = new float[old.length];
            vs[a] = new float[old.length];
            for (int i = 0; i < old.length; i++) {
                double gradient = grad[a][i] + l2 * old[i];
                double m1 = BETA1 * adapter.m[a][i] + (1 - BETA1) * gradient;
                double v1 = BETA2 * adapter.v[a][i] + (1 - BETA2) * gradient * gradient;
                m[a][i] = (float) m1;
                vs[a][i] = (float) v1;
                params[a][i] = (float) (old[i] - learningRate * (m1 / correction1) / (Math.sqrt(v1 / correction2) + EPSILON));
            }
        }
        float[][] nextState = new float[state.length][];
        for (int k = 0; k < state.length; k++) {
            nextState[k] = new float[state[k].length];
            for (int i = 0; i < state[k].length; i++) nextState[k][i] = (float) current[k][i];
        }
        ends.add(nextState);
        return new Result((float) loss, new AdapterState(params, m, vs, adapter.stepCount + 1), nextState);
    }
}

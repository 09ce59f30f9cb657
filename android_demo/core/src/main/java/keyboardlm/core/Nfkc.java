package keyboardlm.core;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Python's NFKC (Unicode 14), the "runtime's own NFKC" of spec step 1, from data generated
 * by make_fixtures.py (normalization.json): full compatibility decomposition, canonical
 * reordering, then canonical composition, step for step as CPython's unicodedata does it.
 * java.text.Normalizer is not used: its Unicode version depends on the JDK or the phone.
 */
final class Nfkc {
    private static final int S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7;
    private static final int L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, S_COUNT = L_COUNT * V_COUNT * T_COUNT;

    private final Map<Integer, int[]> decompositions = new HashMap<>();
    private final int[] cccStarts, cccEnds, cccValues;
    private final Map<Long, Integer> composites = new HashMap<>();

    Nfkc(String json) throws JSONException {
        JSONObject raw = new JSONObject(json);
        JSONObject decomp = raw.getJSONObject("decompositions");
        for (Iterator<String> keys = decomp.keys(); keys.hasNext(); ) {
            String key = keys.next();
            JSONArray cps = decomp.getJSONArray(key);
            int[] mapped = new int[cps.length()];
            for (int i = 0; i < mapped.length; i++) mapped[i] = cps.getInt(i);
            decompositions.put(Integer.valueOf(key), mapped);
        }
        JSONArray classes = raw.getJSONArray("combining_classes");  // sorted [first, last, ccc]
        cccStarts = new int[classes.length()];
        cccEnds = new int[classes.length()];
        cccValues = new int[classes.length()];
        for (int i = 0; i < classes.length(); i++) {
            cccStarts[i] = classes.getJSONArray(i).getInt(0);
            cccEnds[i] = classes.getJSONArray(i).getInt(1);
            cccValues[i] = classes.getJSONArray(i).getInt(2);
        }
        JSONArray pairs = raw.getJSONArray("composites");
        for (int i = 0; i < pairs.length(); i++) {
            JSONArray p = pairs.getJSONArray(i);
            composites.put(pairKey(p.getInt(0), p.getInt(1)), p.getInt(2));
        }
    }

    static Nfkc fromResources() {
        try {
            return new Nfkc(Bytes.resource("normalization.json"));
        } catch (JSONException e) {
            throw new IllegalStateException("keyboardlm/core/normalization.json: " + e.getMessage(), e);
        }
    }

    private static long pairKey(int first, int second) {
        return ((long) first << 21) | second;
    }

    int combiningClass(int cp) {
        int i = Arrays.binarySearch(cccStarts, cp);
        if (i < 0) i = -i - 2;
        return i >= 0 && cp <= cccEnds[i] ? cccValues[i] : 0;
    }

    int[] apply(int[] cps) {
        return compose(decompose(cps));
    }

    /** Full compatibility decomposition, then canonical order (a stable sort of each run of marks). */
    private int[] decompose(int[] cps) {
        int[] out = new int[cps.length * 2 + 4];
        int n = 0;
        for (int cp : cps) {
            int[] mapped = decompositions.get(cp);
            if (mapped == null && cp >= S_BASE && cp < S_BASE + S_COUNT) mapped = hangul(cp);
            if (mapped == null) mapped = new int[] {cp};
            if (n + mapped.length > out.length) out = Arrays.copyOf(out, (n + mapped.length) * 2);
            for (int m : mapped) {
                int ccc = combiningClass(m);
                int j = n++;
                while (ccc != 0 && j > 0 && combiningClass(out[j - 1]) > ccc) {  // insertion sort
                    out[j] = out[j - 1];
                    j--;
                }
                out[j] = m;
            }
        }
        return Arrays.copyOf(out, n);
    }

    private static int[] hangul(int syllable) {
        int index = syllable - S_BASE;
        int l = L_BASE + index / (V_COUNT * T_COUNT);
        int v = V_BASE + (index % (V_COUNT * T_COUNT)) / T_COUNT;
        int t = T_BASE + index % T_COUNT;
        return t == T_BASE ? new int[] {l, v} : new int[] {l, v, t};
    }

    /** CPython's nfc_nfkc composition loop: each character absorbs the unblocked marks after it. */
    private int[] compose(int[] in) {
        int len = in.length;
        boolean[] skipped = new boolean[len];
        int[] out = new int[len];
        int o = 0;
        for (int i = 0; i < len; ) {
            if (skipped[i]) {
                i++;
                continue;
            }
            int code = in[i];
            if (code >= L_BASE && code < L_BASE + L_COUNT && i + 1 < len
                    && in[i + 1] >= V_BASE && in[i + 1] < V_BASE + V_COUNT) {
                code = S_BASE + ((code - L_BASE) * V_COUNT + (in[i + 1] - V_BASE)) * T_COUNT;
                i += 2;
                if (i < len && in[i] > T_BASE && in[i] < T_BASE + T_COUNT) code += in[i++] - T_BASE;
                out[o++] = code;
                continue;
            }
            int comb = 0;
            for (int k = i + 1; k < len; k++) {
                int comb1 = combiningClass(in[k]);
                if (comb != 0) {
                    if (comb1 == 0) break;
                    if (comb >= comb1) continue;  // blocked
                }
                Integer composite = composites.get(pairKey(code, in[k]));
                if (composite == null) {
                    if (comb1 == 0) break;
                    comb = comb1;
                    continue;
                }
                code = composite;
                skipped[k] = true;
            }
            out[o++] = code;
            i++;
        }
        return Arrays.copyOf(out, o);
    }
}

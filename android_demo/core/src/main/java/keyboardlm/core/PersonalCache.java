package keyboardlm.core;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The personal cache (keyboard_lm/phone/personal_cache.py; docs/engine.md §12): the user's
 * recent words and word pairs, mixed into the model's distribution.
 *
 *   p(w | prev) = (1 - weight) * p_model(w | context) + weight * p_cache(w | prev)
 *   p_cache(w | prev) = (c(prev, w) + smoothing * c(w) / n) / (c(prev, .) + smoothing)
 *
 * An undo log of (prev, word) pairs, oldest first, at most {@code capacity}; undoing an add
 * brings back the pair it pushed out. Saved as the same JSON as the Python cache (the pairs
 * only), so either side can read the other's file.
 */
public final class PersonalCache {
    public static final int FORMAT_VERSION = 1;
    public static final int DEFAULT_CAPACITY = 5000;
    public static final double DEFAULT_SMOOTHING = 1.0;

    private final int vocabSize;
    private final double weight;
    private final int capacity;
    private final double smoothing;
    private final ArrayDeque<int[]> pairs = new ArrayDeque<>();
    private final ArrayDeque<int[]> evicted = new ArrayDeque<>();  // per add (the last capacity): the pair it pushed out, or NONE
    private static final int[] NONE = new int[0];
    private final double[] unigram;
    private final Map<Integer, Map<Integer, Integer>> bigram = new HashMap<>();

    public PersonalCache(int vocabSize, double weight, int capacity, double smoothing) {
        if (!(weight >= 0.0 && weight < 1.0)) throw new IllegalArgumentException("cache weight must be in [0, 1), got " + weight);
        if (capacity < 1) throw new IllegalArgumentException("cache capacity must be at least 1, got " + capacity);
        if (!(smoothing > 0)) throw new IllegalArgumentException("cache smoothing must be positive, got " + smoothing);
        this.vocabSize = vocabSize;
        this.weight = weight;
        this.capacity = capacity;
        this.smoothing = smoothing;
        this.unigram = new double[vocabSize];
    }

    public PersonalCache(int vocabSize, double weight) {
        this(vocabSize, weight, DEFAULT_CAPACITY, DEFAULT_SMOOTHING);
    }

    public int size() {
        return pairs.size();
    }

    public void add(int prev, int word) {
        pairs.addLast(new int[] {prev, word});
        count(prev, word, 1);
        int[] oldest = NONE;
        if (pairs.size() > capacity) {
            oldest = pairs.removeFirst();
            count(oldest[0], oldest[1], -1);
        }
        evicted.addLast(oldest);
        if (evicted.size() > capacity) evicted.removeFirst();
    }

    /**
     * Undoes the latest {@link #add} (the user deleted that word), bringing back the pair that
     * add pushed out; a no-op when empty.
     */
    public void removeLast() {
        if (!pairs.isEmpty()) {
            int[] last = pairs.removeLast();
            count(last[0], last[1], -1);
            int[] back = evicted.isEmpty() ? NONE : evicted.removeLast();
            if (back != NONE) {
                pairs.addFirst(back);
                count(back[0], back[1], 1);
            }
        }
    }

    private void count(int prev, int word, int delta) {
        unigram[word] += delta;
        Map<Integer, Integer> following = bigram.get(prev);
        if (following == null) bigram.put(prev, following = new HashMap<>());
        Integer old = following.get(word);
        int now = (old == null ? 0 : old) + delta;
        if (now == 0) {
            following.remove(word);
            if (following.isEmpty()) bigram.remove(prev);
        } else {
            following.put(word, now);
        }
    }

    /** log p(w | prev) of the mixture for every id, in double precision like the Python cache. */
    public double[] mix(float[] logProbs, int prev) {
        double[] out = new double[logProbs.length];
        if (pairs.isEmpty() || weight == 0.0) {
            for (int i = 0; i < out.length; i++) out[i] = logProbs[i];
            return out;
        }
        double[] cache = new double[logProbs.length];
        double scale = smoothing / pairs.size();
        for (int i = 0; i < cache.length; i++) cache[i] = unigram[i] * scale;
        long total = 0;
        Map<Integer, Integer> following = bigram.get(prev);
        if (following != null) {
            for (Map.Entry<Integer, Integer> e : following.entrySet()) {
                cache[e.getKey()] += e.getValue();
                total += e.getValue();
            }
        }
        double norm = total + smoothing;
        for (int i = 0; i < out.length; i++) {
            out[i] = Math.log((1.0 - weight) * Math.exp((double) logProbs[i]) + weight * (cache[i] / norm));
        }
        return out;
    }

    public JSONObject toJson() throws JSONException {
        JSONArray list = new JSONArray();
        for (int[] p : pairs) list.put(new JSONArray().put(p[0]).put(p[1]));
        return new JSONObject().put("format_version", FORMAT_VERSION).put("vocab_size", vocabSize).put("weight", weight)
                .put("capacity", capacity).put("smoothing", smoothing).put("pairs", list);
    }

    /** A saved cache, checked against the bundle's vocabulary size ({@code source} names the file). */
    public static PersonalCache fromJson(JSONObject data, int vocabSize, String source) throws BundleException {
        if (!Vocabulary.isInt(data.opt("format_version"), FORMAT_VERSION)) {
            throw new BundleException(source + ": field format_version: expected " + FORMAT_VERSION + ", got " + data.opt("format_version"));
        }
        if (!Vocabulary.isInt(data.opt("vocab_size"), vocabSize)) {
            throw new BundleException(source + ": field vocab_size: the cache was made for " + data.opt("vocab_size")
                    + " ids, the bundle has " + vocabSize);
        }
        PersonalCache cache;
        try {
            cache = new PersonalCache(vocabSize, data.getDouble("weight"), data.getInt("capacity"), data.getDouble("smoothing"));
        } catch (JSONException | IllegalArgumentException e) {
            throw new BundleException(source + ": " + e.getMessage());
        }
        JSONArray list = data.optJSONArray("pairs");
        for (int i = 0; list != null && i < list.length(); i++) {
            JSONArray pair = list.optJSONArray(i);
            if (pair == null || pair.length() != 2 || !isId(pair.opt(0), vocabSize) || !isId(pair.opt(1), vocabSize)) {
                throw new BundleException(source + ": field pairs[" + i + "]: expected two ids below " + vocabSize + ", got " + list.opt(i));
            }
            cache.add(pair.optInt(0), pair.optInt(1));
        }
        return cache;
    }

    private static boolean isId(Object value, int vocabSize) {
        if (!(value instanceof Integer || value instanceof Long)) return false;
        long id = ((Number) value).longValue();
        return id >= 0 && id < vocabSize;
    }
}

package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.json.JSONObject;
import org.junit.jupiter.api.Test;

/** The personal cache's undo log and its checks (keyboard_lm/phone/personal_cache.py's, mirrored). */
class PersonalCacheTest {
    private static String pairs(PersonalCache cache) throws Exception {
        return cache.toJson().getJSONArray("pairs").toString();
    }

    @Test
    void undoBringsBackWhatAnAddPushedOut() throws Exception {
        PersonalCache cache = new PersonalCache(10, 0.5, 2, 1.0);
        for (int word = 4; word <= 7; word++) cache.add(word - 1, word);
        assertEquals("[[5,6],[6,7]]", pairs(cache));
        double[] full = cache.mix(new float[10], 6);
        cache.removeLast();
        assertEquals("[[4,5],[5,6]]", pairs(cache));
        cache.removeLast();
        assertEquals("[[3,4],[4,5]]", pairs(cache));
        cache.removeLast();  // the undo log holds the last `capacity` adds: nothing more comes back
        assertEquals("[[3,4]]", pairs(cache));
        cache.add(4, 5);
        cache.add(5, 6);
        cache.add(6, 7);
        assertEquals("[[5,6],[6,7]]", pairs(cache));
        assertEquals(java.util.Arrays.toString(full), java.util.Arrays.toString(cache.mix(new float[10], 6)), "counts restored");
        cache.removeLast();
        cache.removeLast();
        cache.removeLast();
        cache.removeLast();
        assertEquals(0, cache.size());
        cache.removeLast();  // a no-op when empty
        assertEquals(0, cache.size());
    }

    @Test
    void smoothingMustBePositive() throws Exception {
        for (double smoothing : new double[] {0.0, -1.0, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new PersonalCache(10, 0.3, 5, smoothing));
            assertTrue(e.getMessage().contains("smoothing must be positive"), e.getMessage());
        }
        JSONObject saved = new PersonalCache(10, 0.3).toJson().put("smoothing", 0.0);
        BundleException e = assertThrows(BundleException.class, () -> PersonalCache.fromJson(saved, 10, "cache.json"));
        assertEquals("cache.json: cache smoothing must be positive, got 0.0", e.getMessage());
    }
}

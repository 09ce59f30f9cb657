package keyboardlm.core;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The spec's frozen tables (data_pipeline/unicode_tables.json, shipped byte-identical in
 * core's resources): ICU's NFKC of single code points, the 1:1 lowercase map (Unicode 14),
 * and the punctuation ranges (general categories P* and S*).
 */
final class UnicodeTables {
    final Map<Integer, int[]> nfkc = new HashMap<>();
    final Map<Integer, Integer> lowercase = new HashMap<>();
    final RangeTable punctuation;

    UnicodeTables(String json) throws JSONException {
        JSONObject raw = new JSONObject(json);
        JSONObject nfkcJson = raw.getJSONObject("nfkc");
        for (Iterator<String> keys = nfkcJson.keys(); keys.hasNext(); ) {
            String key = keys.next();
            nfkc.put(Integer.valueOf(key), CodePoints.of(nfkcJson.getString(key)));
        }
        JSONObject lower = raw.getJSONObject("lowercase");
        for (Iterator<String> keys = lower.keys(); keys.hasNext(); ) {
            String key = keys.next();
            lowercase.put(Integer.valueOf(key), lower.getInt(key));
        }
        JSONArray ranges = raw.getJSONArray("punctuation");
        int[][] punct = new int[ranges.length()][];
        for (int i = 0; i < punct.length; i++) {
            punct[i] = new int[] {ranges.getJSONArray(i).getInt(0), ranges.getJSONArray(i).getInt(1)};
        }
        punctuation = new RangeTable(punct);
    }

    static UnicodeTables fromResources() {
        try {
            return new UnicodeTables(Bytes.resource("unicode_tables.json"));
        } catch (JSONException e) {
            throw new IllegalStateException("keyboardlm/core/unicode_tables.json: " + e.getMessage(), e);
        }
    }
}

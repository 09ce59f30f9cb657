package keyboardlm.core;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** Paths the Python side hands over as system properties (run-tests.sh sets them). */
final class Fixtures {
    private Fixtures() {}

    static File path(String property) {
        String value = System.getProperty(property);
        if (value == null || value.isEmpty()) {
            fail("system property " + property + " is not set; run android_demo/core/run-tests.sh "
                    + "(tests/android/test_java_core.py writes the traces and the bundle)");
        }
        File file = new File(value);
        if (!file.exists()) fail(property + "=" + value + ": no such file or directory");
        return file;
    }

    static JSONObject json(File file) throws IOException, JSONException {
        return new JSONObject(new String(Bytes.readAll(new FileInputStream(file)), Bytes.UTF8));
    }

    static List<String> strings(JSONArray array) throws JSONException {
        List<String> out = new ArrayList<>(array.length());
        for (int i = 0; i < array.length(); i++) out.add(array.getString(i));
        return out;
    }
}

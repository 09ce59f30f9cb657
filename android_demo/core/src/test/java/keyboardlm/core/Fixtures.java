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

    /**
     * Copies every file of the bundle directory {@code source} into {@code target} (made if need
     * be): the optional ones too (lexicon.tsv.gz, adapter-general.txt), which the manifest lists.
     */
    static void copyBundle(File source, File target) throws IOException {
        if (!target.isDirectory() && !target.mkdirs()) throw new IOException(target + ": cannot make the folder");
        File[] files = source.listFiles();
        if (files == null) throw new IOException(source + ": not a folder");
        for (File file : files) {
            if (!file.isFile()) continue;
            try (java.io.FileOutputStream out = new java.io.FileOutputStream(new File(target, file.getName()))) {
                out.write(Bytes.readAll(new FileInputStream(file)));
            }
        }
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

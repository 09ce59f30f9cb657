package keyboardlm.core;

import java.util.Arrays;

/** A set of code points given as sorted, disjoint inclusive ranges; membership by binary search. */
final class RangeTable {
    private final int[] starts;
    private final int[] ends;

    RangeTable(int[][] ranges) {
        int[][] sorted = ranges.clone();
        Arrays.sort(sorted, (a, b) -> Integer.compare(a[0], b[0]));
        starts = new int[sorted.length];
        ends = new int[sorted.length];
        for (int i = 0; i < sorted.length; i++) {
            starts[i] = sorted[i][0];
            ends[i] = sorted[i][1];
        }
    }

    boolean contains(int cp) {
        int i = Arrays.binarySearch(starts, cp);
        if (i < 0) i = -i - 2;  // the last range starting before cp
        return i >= 0 && cp <= ends[i];
    }
}

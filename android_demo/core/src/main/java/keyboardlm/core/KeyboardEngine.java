package keyboardlm.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The keyboard engine: keyboard_lm/phone/keyboard.py's KeyboardEngine, line for line (golden
 * traces of the Python engine hold the two to the same strips, keystroke by keystroke).
 *
 * The rules are written once, in docs/engine.md, which both ports cite by section: the fed
 * ids are a function of the text (§2); the strip (as many words as the bundle's manifest says,
 * 3 by default) ranks next words or completions of the typed prefix (§3, §4), in keyboard
 * casing (§5), never re-offering a word passed over (§6); a tap commits a word and a space
 * (§7); a keystroke rewinds from a bounded stack of states (§8); the engine reads the last
 * CONTEXT_CHARS code points and re-tokenizes only from the last whitespace checkpoint (§9);
 * resets prime a field and cursor jumps reset on the same text (§10); a private field is only
 * followed (§11); the personal cache mixes in and learns committed words (§12); the bundle's
 * lexicon and the user's words share the model's unk probability, so words outside the
 * vocabulary are offered too (§16), and the user's words are learned after N commits (§17;
 * a bundle without a lexicon and an engine without user words behave as before). Text indices
 * are UTF-16 here, code points in Python; every slice the spec defines on code points goes
 * through {@link CodePoints} (§1).
 */
public final class KeyboardEngine {
    public static final int STACK_LIMIT = 256;  // states kept for rewinding; deeper rewinds re-prime (docs/engine.md §8)
    public static final int CONTEXT_CHARS = 2000;  // code points before the cursor the engine reads (§9)
    /** The share of the unk mass the user's words take when there is a lexicon too (§16). */
    public static final double USER_SHARE = 0.5;
    private static final String MAX_CODE_POINT = new String(Character.toChars(0x10FFFF));

    private final Vocabulary vocab;
    private final StepModel model;
    private final PersonalCache cache;
    private final Lexicon lexicon;  // words outside the vocabulary (§16), or null
    private final UserWords userWords;  // words the user teaches it (§17), or null
    private final boolean noRepeat;
    private final int stripSize;
    private final boolean resetAtSentenceStart;
    private final Tokenizer tokenizer = Tokenizer.standard();
    private final boolean[] suggestible;
    private final int[] allSuggestible;
    private final String[] keys;  // lowercased suggestible tokens, in Python's (key, id) order
    private final int[] keyIds;

    private float[][] state;
    private List<Integer> fed = new ArrayList<>();
    private List<float[][]> stack = new ArrayList<>();
    private List<Boolean> learned = new ArrayList<>();
    private List<String> words = new ArrayList<>();  // per fed id: its word as typed if unk (with user words, §17)
    private List<Boolean> taught = new ArrayList<>();  // per fed id: whether it committed a user word
    private List<String> tailWords = new ArrayList<>();  // the last extend's words, aligned with its ids
    private String text = "", prefix = "";
    private float[] logProbs;
    private double[] scores;
    private Set<String> passed = new HashSet<>();
    private List<String> shown = new ArrayList<>();
    private int wordStart;
    private int primed;  // fed ids that came from priming (reset): never learned by the cache
    private int primedEnd;  // where the opening text ends (maps primed onto a new window)
    private int base;  // where the fed ids begin in the text (they start with bos there)
    private List<int[]> marks = new ArrayList<>();  // checkpoints {position, ids before it}, ascending
    private boolean privateField;  // until the next reset: follow the text only (no step, no strip, nothing learned)

    /** The new text's fed ids: fed[:kept] + tail; per tail id its word as typed if unk (with user words), else null. */
    private static final class Wanted {
        final int kept;
        final List<Integer> tail;
        final List<String> tailWords;

        Wanted(int kept, List<Integer> tail, List<String> tailWords) {
            this.kept = kept;
            this.tail = tail;
            this.tailWords = tailWords;
        }
    }

    /** A piece of text ending after a whitespace run, and its tokens. */
    private static final class Piece {
        final int end;
        final List<String> tokens;

        Piece(int end, List<String> tokens) {
            this.end = end;
            this.tokens = tokens;
        }
    }

    /**
     * An engine on an empty field. {@code cache}: the personal cache (null: none); {@code noRepeat}:
     * passed-over words stay off the strip (§6); {@code stripSize}: words on the strip (the
     * bundle's is {@link Bundle#stripSize}, §3); {@code userWords}: the words the user teaches
     * it (§17; null: none, nothing is learned). The bundle's lexicon, if it has one, is used (§16).
     */
    public KeyboardEngine(Bundle bundle, StepModel model, PersonalCache cache, boolean noRepeat, int stripSize,
                          UserWords userWords) throws BundleException {
        this.vocab = bundle.vocabulary;
        this.model = model;
        this.cache = cache;
        this.lexicon = bundle.lexicon;
        this.userWords = userWords;
        this.noRepeat = noRepeat;
        this.stripSize = stripSize;
        this.resetAtSentenceStart = bundle.resetAtSentenceStart;  // sentence_context (§2)
        if (model.outputSize() != vocab.size()) {
            throw new BundleException("model.tflite: outputs " + model.outputSize() + " log-probabilities, but vocab.txt has "
                    + vocab.size() + " tokens");
        }
        int n = vocab.size();
        suggestible = new boolean[n];
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) {  // vocabulary words, no specials or punctuation (§3)
            suggestible[i] = i >= Vocabulary.SPECIAL_TOKENS.size() && tokenizer.isWord(vocab.token(i));
            if (suggestible[i]) ids.add(i);
        }
        allSuggestible = toArray(ids);
        final String[] lowered = new String[n];
        for (int id : allSuggestible) lowered[id] = tokenizer.lowercase(vocab.token(id));
        Collections.sort(ids, (a, b) -> {
            int c = CodePoints.compare(lowered[a], lowered[b]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        keyIds = toArray(ids);
        keys = new String[keyIds.length];
        for (int i = 0; i < keys.length; i++) keys[i] = lowered[keyIds[i]];
        reset("");
    }

    /** An engine without user words. */
    public KeyboardEngine(Bundle bundle, StepModel model, PersonalCache cache, boolean noRepeat, int stripSize)
            throws BundleException {
        this(bundle, model, cache, noRepeat, stripSize, null);
    }

    /** An engine with the bundle's strip size (§3). */
    public KeyboardEngine(Bundle bundle, StepModel model, PersonalCache cache, boolean noRepeat) throws BundleException {
        this(bundle, model, cache, noRepeat, bundle.stripSize);
    }

    public KeyboardEngine(Bundle bundle, StepModel model) throws BundleException {
        this(bundle, model, null, true);
    }

    // -- text changes ---------------------------------------------------------------------

    /**
     * A new text field or a cursor jump: empty state, then primed on {@code newText} (§10). The
     * cache (if any) does not learn the text a field opens with (it learned it when it was
     * typed), unless {@code learn}: teaching a cache the user's earlier text.
     * {@code privateField}: a password field, or one that asks for no suggestions or no
     * learning ({@link InputTypes#isPrivate}): until the next reset the engine only follows
     * the text; no model step, an empty strip, nothing learned or cached (§11).
     */
    public void reset(String newText, boolean learn, boolean privateField) {
        this.privateField = privateField;
        state = model.zeroState();
        primed = learn ? 0 : Integer.MAX_VALUE;
        primedEnd = learn ? 0 : Integer.MAX_VALUE;
        fed = new ArrayList<>();
        stack = new ArrayList<>();
        learned = new ArrayList<>();
        words = new ArrayList<>();
        taught = new ArrayList<>();
        tailWords = new ArrayList<>();
        text = "";
        prefix = "";
        base = 0;
        marks = new ArrayList<>();
        marks.add(new int[] {0, 1});
        logProbs = null;
        scores = null;
        passed = new HashSet<>();
        shown = new ArrayList<>();
        wordStart = 0;
        if (privateField) {
            text = newText;
            return;
        }
        feed(Vocabulary.BOS_ID);
        setText(newText);
        primed = Math.min(primed, fed.size());  // ids at these positions are never learned
        primedEnd = Math.min(primedEnd, newText.length());
    }

    public void reset(String newText, boolean learn) {
        reset(newText, learn, false);
    }

    public void reset(String newText) {
        reset(newText, false);
    }

    public void reset() {
        reset("", false);
    }

    /** The text before the cursor changed (typing, backspace, paste): resync the model (§8). */
    public void setText(String newText) {
        if (privateField) {
            text = newText;
            return;
        }
        if (newText.equals(text) && !fed.isEmpty()) return;
        boolean typedOn = newText.startsWith(text) && newText.length() > text.length();
        Wanted wanted = retokenize(newText);  // sets prefix and the checkpoints
        text = newText;
        int start = prefixStart();
        if (typedOn && start == wordStart) {  // no-repeat (§6)
            for (String word : shown) passed.add(lower(word));  // shown, not tapped
        } else {
            passed = new HashSet<>();
        }
        wordStart = start;
        shown = new ArrayList<>();
        int common = wanted.kept;
        while (common < fed.size() && common - wanted.kept < wanted.tail.size()
                && fed.get(common).equals(wanted.tail.get(common - wanted.kept))) {
            if (fed.get(common) == Vocabulary.UNK_ID && userWords != null
                    && !java.util.Objects.equals(words.get(common), wanted.tailWords.get(common - wanted.kept))) {
                break;  // another unknown word at the same place (§17)
            }
            common++;
        }
        if (common < fed.size()) {
            if (common > 0 && stack.get(common - 1) == null) {  // deeper than the stack: re-prime (§9)
                wanted = window(newText);
                common = 0;
            }
            rewind(common);
        }
        for (int i = fed.size() - wanted.kept; i < wanted.tail.size(); i++) feed(wanted.tail.get(i), wanted.tailWords.get(i));
    }

    public void type(String characters) {
        setText(text + characters);
    }

    public void backspace() {
        setText(CodePoints.dropLast(text));
    }

    /** Accepts suggestion {@code index}: the word replaces the prefix, plus a space (§7). */
    public String tap(int index) {
        String word = strip().get(index);
        setText(afterTap(word));
        return word;
    }

    /** The text {@link #tap} leaves when it takes {@code word}; changes nothing (the controller's edit). */
    public String afterTap(String word) {
        String before = text.substring(0, prefixStart());
        if (!before.isEmpty() && prefix.isEmpty() && !Tokenizer.endsWithSpace(before)) {
            before += " ";  // after "Hi." the word needs its own space
        }
        return before + word + " ";
    }

    // -- model steps ----------------------------------------------------------------------

    /** Tokenizes from the last checkpoint before the change; sets the prefix and the checkpoints (§9). */
    private Wanted retokenize(String newText) {
        int last = marksUpTo(commonPrefixLength(text, newText));  // checkpoints still valid
        if (last == 0) return window(newText);  // an edit before the window
        int from = marks.get(last - 1)[0];  // more than CONTEXT_CHARS of new text (UTF-16 bound first)
        if (from < newText.length() - CONTEXT_CHARS && from < windowStart(newText)) return window(newText);
        marks.subList(last, marks.size()).clear();
        int[] mark = marks.get(last - 1);
        List<String> rest = new ArrayList<>();
        List<Piece> pieces = chunks(newText, mark[0], rest);
        List<Integer> ids = extend(pieces, rest, newText);
        return new Wanted(mark[1], ids, tailWords);
    }

    /** Starts the fed ids afresh at the window's base (§9): kept 0, all the ids. */
    private Wanted window(String newText) {
        int start = windowStart(newText);
        if (start > 0) {
            int i = start - 1;
            while (i < newText.length() && !Tokenizer.isSpace(newText.charAt(i))) i++;
            if (i < newText.length()) {
                while (i < newText.length() && Tokenizer.isSpace(newText.charAt(i))) i++;
                start = i;
            }
        }
        List<String> rest = new ArrayList<>();
        List<Piece> pieces = chunks(newText, start, rest);
        for (int k = 0; start > 0 && k < pieces.size(); k++) {  // prefer a sentence start
            List<String> tokens = pieces.get(k).tokens;
            if (!tokens.isEmpty() && Tokenizer.SENTENCE_ENDS.contains(tokens.get(tokens.size() - 1))) {
                start = pieces.get(k).end;
                pieces = pieces.subList(k + 1, pieces.size());
                break;
            }
        }
        boolean moved = start != base;
        base = start;
        marks = new ArrayList<>();
        marks.add(new int[] {start, 1});
        List<Integer> ids = new ArrayList<>();
        ids.add(Vocabulary.BOS_ID);
        ids.addAll(extend(pieces, rest, newText));
        tailWords.add(0, null);
        if (moved && primedEnd > 0 && primedEnd < Integer.MAX_VALUE) {  // the opening text's ids, in the new window (§10)
            primed = primedEnd >= start ? marks.get(marksUpTo(primedEnd) - 1)[1] : 0;
        }
        return new Wanted(0, ids, tailWords);
    }

    /**
     * Ids of the tokens after the last checkpoint, adding one after each piece; sets the prefix
     * (§2). Sets tailWords: per id, the word as typed if it is unk (with user words, §17), else null.
     */
    private List<Integer> extend(List<Piece> pieces, List<String> rest, String s) {
        List<Integer> ids = new ArrayList<>();
        List<String> found = new ArrayList<>();
        int before = marks.get(marks.size() - 1)[1];
        int begin = marks.get(marks.size() - 1)[0];
        for (Piece piece : pieces) {
            addIds(piece.tokens, ids, found, s, begin, piece.end);
            marks.add(new int[] {piece.end, before + ids.size()});
            begin = piece.end;
        }
        prefix = "";
        if (!rest.isEmpty() && tokenizer.isWord(rest.get(rest.size() - 1))) prefix = rest.remove(rest.size() - 1);
        addIds(rest, ids, found, s, begin, s.length());
        tailWords = found;
        return ids;
    }

    private void addIds(List<String> tokens, List<Integer> ids, List<String> found, String s, int begin, int end) {
        int start = ids.size();
        boolean unknown = false;
        for (String token : tokens) {
            int id = vocab.id(token);
            unknown |= id == Vocabulary.UNK_ID;
            ids.add(id);
            found.add(null);
            if (Tokenizer.SENTENCE_ENDS.contains(token)) {  // a sentence end (§2)
                ids.add(Vocabulary.EOS_ID);
                ids.add(Vocabulary.BOS_ID);
                found.add(null);
                found.add(null);
            }
        }
        if (userWords == null || !unknown) return;
        // the words as typed, in their case (§17)
        List<String> cased = tokenizer.tokenize(s.substring(begin, end), false);
        if (cased.size() > tokens.size()) cased = cased.subList(0, tokens.size());
        if (cased.size() < tokens.size()) cased = tokens;
        int position = start;
        for (int i = 0; i < tokens.size(); i++) {
            String token = tokens.get(i), typed = cased.get(i);
            if (ids.get(position) == Vocabulary.UNK_ID) {
                found.set(position, tokenizer.lowercase(typed).equals(tokenizer.lowercase(token)) ? typed : token);
            }
            position += Tokenizer.SENTENCE_ENDS.contains(token) ? 3 : 1;
        }
    }

    /** Tokens of text[start:] cut after each whitespace run (the pieces, §9); the tokens after the last run go in rest. */
    private List<Piece> chunks(String s, int start, List<String> rest) {
        List<Piece> pieces = new ArrayList<>();
        int begin = start, i = start, n = s.length();
        while (i < n) {
            if (!Tokenizer.isSpace(s.charAt(i))) {
                i++;
                continue;
            }
            while (i < n && Tokenizer.isSpace(s.charAt(i))) i++;
            pieces.add(new Piece(i, tokenizer.tokenize(s.substring(begin, i), vocab.lowercase())));
            begin = i;
        }
        if (begin < n) rest.addAll(tokenizer.tokenize(s.substring(begin), vocab.lowercase()));
        return pieces;
    }

    /** How many checkpoints lie at or before {@code position}. */
    private int marksUpTo(int position) {
        int lo = 0, hi = marks.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (marks.get(mid)[0] <= position) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** Where the last CONTEXT_CHARS code points of {@code s} begin, or 0 if it has no more (§9). */
    static int windowStart(String s) {
        if (s.length() <= CONTEXT_CHARS) return 0;
        int i = s.length();
        for (int n = 0; n < CONTEXT_CHARS && i > 0; n++) i -= Character.charCount(s.codePointBefore(i));
        return i;
    }

    /** Length of the longest common prefix (startsWith for typing and backspace). */
    static int commonPrefixLength(String a, String b) {
        if (b.startsWith(a)) return a.length();
        if (a.startsWith(b)) return b.length();
        int i = 0;
        while (a.charAt(i) == b.charAt(i)) i++;
        return i;
    }

    private void feed(int tokenId) {
        feed(tokenId, null);
    }

    private void feed(int tokenId, String word) {
        stack.add(state);  // the state before this id (never modified, so no copy)
        if (stack.size() > STACK_LIMIT) stack.set(stack.size() - STACK_LIMIT - 1, null);  // forget the oldest
        if (tokenId == Vocabulary.BOS_ID && resetAtSentenceStart) state = model.zeroState();  // sentence_context "reset" (§2)
        // the cache learns a committed vocabulary word, unless the field opened with it (§12)
        boolean learn = cache != null && suggestible[tokenId] && fed.size() >= primed;
        if (learn) cache.add(fed.isEmpty() ? Vocabulary.BOS_ID : fed.get(fed.size() - 1), tokenId);
        learned.add(learn);
        boolean counted = false;  // an unknown word, outside the lexicon too, counts towards learning it (§17)
        if (word != null && fed.size() >= primed && (lexicon == null || !lexicon.containsKey(tokenizer.lowercase(word)))) {
            counted = userWords.commit(fed.isEmpty() ? "<bos>" : vocab.token(fed.get(fed.size() - 1)), word);
        }
        taught.add(counted);
        words.add(word);
        fed.add(tokenId);
        StepModel.Step step = model.step(tokenId, state);
        state = step.state;
        logProbs = step.logProbs;
        scores = null;
    }

    /**
     * Back to the first {@code length} fed ids; re-steps one id to get its log-probs (§8); the
     * cache forgets what the dropped ids taught it (§12), the user words the commits they made (§17).
     */
    private void rewind(int length) {
        for (int i = Math.max(length - 1, 0); i < learned.size(); i++) {
            if (learned.get(i)) cache.removeLast();
        }
        for (int i = Math.max(length - 1, 0); i < taught.size(); i++) {
            if (taught.get(i)) userWords.undo();
        }
        if (length == 0) {
            state = model.zeroState();
            fed = new ArrayList<>();
            stack = new ArrayList<>();
            learned = new ArrayList<>();
            words = new ArrayList<>();
            taught = new ArrayList<>();
            return;
        }
        state = stack.get(length - 1);
        int last = fed.get(length - 1);
        String word = words.get(length - 1);
        fed.subList(length - 1, fed.size()).clear();
        stack.subList(length - 1, stack.size()).clear();
        learned.subList(length - 1, learned.size()).clear();
        words.subList(length - 1, words.size()).clear();
        taught.subList(length - 1, taught.size()).clear();
        feed(last, word);
    }

    // -- the strip ------------------------------------------------------------------------

    /** Where the word being typed starts in the text (UTF-16; text.length() if none is). */
    private int prefixStart() {
        if (prefix.isEmpty()) return text.length();
        int start = marks.get(marks.size() - 1)[0];  // the prefix lies after the last checkpoint
        List<int[]> spans = tokenizer.tokenSpans(text.substring(start));
        int[] lastSpan = spans.isEmpty() ? null : spans.get(spans.size() - 1);
        return lastSpan != null && start + lastSpan[1] == text.length() ? start + lastSpan[0] : text.length();
    }

    /** The prefix as the user typed it, if it reads as the prefix token on its own. */
    private String typedPrefix() {
        String typed = text.substring(prefixStart());
        return !typed.isEmpty() && tokenizer.tokenize(typed, vocab.lowercase()).equals(Collections.singletonList(prefix)) ? typed : "";
    }

    /**
     * Up to strip-size distinct words: completions of the prefix (§4), else next words (§3); a
     * hyphenated prefix's remaining slots take compounds (§4.1).
     */
    public List<String> strip() {
        if (privateField) return new ArrayList<>();
        String key = prefix.isEmpty() ? null : tokenizer.lowercase(prefix);
        int room = stripSize * 4 + passed.size();  // room for case duplicates
        List<String> words = new ArrayList<>();
        Set<String> seen = new HashSet<>(passed);  // passed-over words are never re-offered
        String typed = typedPrefix();
        fill(words, seen, key, room, prefix, typed, "", false);
        if (words.size() < stripSize) {
            String[] compound = compound(typed);
            if (compound != null) {
                boolean shout = CodePoints.length(typed) > 1 && isUpper(typed);  // all capitals typed: the compound too (§4.1)
                fill(words, seen, tokenizer.lowercase(compound[1]), room, compound[1], compound[2], compound[0], shout);
            }
        }
        if (noRepeat) shown = words;
        return new ArrayList<>(words);
    }

    /**
     * Adds to {@code words} (up to the strip size) the best candidates completing {@code key}
     * (null: next words), ranked by §3/§16, each {@code head} + its displayed form (§5, §16) for
     * the prefix token {@code prefixToken} typed as {@code typed} (upper-cased if {@code shout}),
     * unless its lowercase is in {@code seen}.
     */
    private void fill(List<String> words, Set<String> seen, String key, int room, String prefixToken, String typed,
                      String head, boolean shout) {
        int[] candidates;
        if (key != null) {
            int lo = lowerBound(key), hi = lowerBound(key + MAX_CODE_POINT);
            candidates = Arrays.copyOfRange(keyIds, lo, hi);
        } else {
            candidates = allSuggestible;
        }
        Extras extras = extraCandidates(key, room);
        if (candidates.length == 0 && extras.ids.length == 0) return;
        final double[] ranking = scores();
        int take = Math.min(candidates.length, room);
        int[] order = top(candidates, ranking, take);
        if (extras.ids.length > 0) {  // words outside the vocabulary join the ranking (§16)
            int n = take + extras.ids.length;
            int[] ids = Arrays.copyOf(order, n);
            double[] all = new double[n];
            for (int i = 0; i < take; i++) all[i] = ranking[order[i]];
            System.arraycopy(extras.ids, 0, ids, take, extras.ids.length);
            System.arraycopy(extras.scores, 0, all, take, extras.scores.length);
            order = best(ids, all, Math.min(n, room));
            take = order.length;
        }
        int vocabularySize = vocab.size();
        for (int i = 0; i < take && words.size() < stripSize; i++) {
            int id = order[i];
            String word = head + (id < vocabularySize ? display(vocab.token(id), typed, prefixToken)
                                                      : displayExtra(extras.words.get(id), typed, prefixToken));
            if (shout) word = upper(word);
            if (seen.add(lower(word))) words.add(word);
        }
    }

    /**
     * {head, tail, typed tail} of a typed hyphenated prefix (§4.1): head the typed text up to and
     * including its last hyphen ({@code -} or U+2010), tail the prefix token's part after its last
     * {@code -}, typed as the rest; null unless that rest is non-empty and reads as the tail.
     */
    private String[] compound(String typed) {
        int cut = Math.max(typed.lastIndexOf('-'), typed.lastIndexOf('\u2010'));
        int dash = prefix.lastIndexOf('-');
        if (cut < 0 || dash < 0) return null;
        String tail = prefix.substring(dash + 1), tailTyped = typed.substring(cut + 1);
        if (tailTyped.isEmpty() || !tokenizer.tokenize(tailTyped, vocab.lowercase()).equals(Collections.singletonList(tail))) {
            return null;
        }
        return new String[] {typed.substring(0, cut + 1), tail, tailTyped};
    }

    /** Lexicon and user words as strip candidates: extra ids (from the vocabulary's size on), their scores and words. */
    private static final class Extras {
        final int[] ids;
        final double[] scores;
        final java.util.Map<Integer, String> words;

        Extras(int[] ids, double[] scores, java.util.Map<Integer, String> words) {
            this.ids = ids;
            this.scores = scores;
            this.words = words;
        }
    }

    private static final Extras NO_EXTRAS = new Extras(new int[0], new double[0], Collections.<Integer, String>emptyMap());

    /**
     * The best {@code room} lexicon words and the user's learned words completing {@code key}
     * (null: next words), by §16's rule: the unk score plus the log of the word's share of the
     * unk mass. Ids from the vocabulary's size on: the lexicon's in count order, then the user's
     * in key order. None without a lexicon or learned user words.
     */
    private Extras extraCandidates(String key, int room) {
        int users = userWords != null ? userWords.size() : 0;
        if (lexicon == null && users == 0) return NO_EXTRAS;
        double unk = scores()[Vocabulary.UNK_ID];
        double lexiconShare = users == 0 ? 1.0 : (lexicon != null && lexicon.total != 0 ? 1.0 - USER_SHARE : 0.0);
        int first = vocab.size();
        List<Integer> ids = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        java.util.Map<Integer, String> found = new java.util.HashMap<>();
        if (lexicon != null && lexicon.total != 0 && lexiconShare != 0) {
            int[] chosen;
            if (key == null) {  // next words: the most frequent
                chosen = Arrays.copyOf(lexicon.byCount, Math.min(room, lexicon.byCount.length));
            } else {
                int[] range = lexicon.range(key);
                chosen = lowestRanks(range[0], range[1], room);
            }
            for (int i : chosen) {
                int id = first + lexicon.rank[i];
                ids.add(id);
                values.add(unk + Math.log(lexiconShare * lexicon.counts[i] / lexicon.total));
                found.put(id, lexicon.words[i]);
            }
        }
        if (users > 0) {
            int[] range = key != null ? userWords.range(key) : new int[] {0, users};
            if (range[1] > range[0]) {
                double share = 1.0 - lexiconShare;
                double[] probabilities = userWords.probabilities(vocab.token(fed.get(fed.size() - 1)), range[0], range[1]);
                int offset = first + (lexicon != null ? lexicon.size() : 0);
                for (int i = range[0]; i < range[1]; i++) {
                    ids.add(offset + i);
                    values.add(unk + Math.log(share * probabilities[i - range[0]]));
                    found.put(offset + i, userWords.form(i));
                }
            }
        }
        if (ids.isEmpty()) return NO_EXTRAS;
        double[] scored = new double[values.size()];
        for (int i = 0; i < scored.length; i++) scored[i] = values.get(i);
        return new Extras(toArray(ids), scored, found);
    }

    /** Of the lexicon indices lo..hi, the {@code room} of lowest rank (most frequent; any order). */
    private int[] lowestRanks(int lo, int hi, int room) {
        if (hi - lo <= room) {
            int[] all = new int[hi - lo];
            for (int i = lo; i < hi; i++) all[i - lo] = i;
            return all;
        }
        int[] ranks = Arrays.copyOfRange(lexicon.rank, lo, hi);
        Arrays.sort(ranks);
        int[] out = new int[room];
        for (int i = 0; i < room; i++) out[i] = lexicon.byCount[ranks[i]];
        return out;
    }

    /**
     * The {@code take} best candidates, best first; equal scores rank the lower id (the more
     * frequent word) first, as the Python engine does (§3).
     */
    private static int[] top(int[] candidates, double[] ranking, int take) {
        int[] best = new int[take];
        int count = 0;
        for (int id : candidates) {
            if (count == take && (take == 0 || !better(id, best[take - 1], ranking))) continue;
            int j = count < take ? count++ : take - 1;
            while (j > 0 && better(id, best[j - 1], ranking)) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = id;
        }
        return best;
    }

    private static boolean better(int a, int b, double[] ranking) {
        return ranking[a] > ranking[b] || (ranking[a] == ranking[b] && a < b);
    }

    /** Like {@link #top}, over ids with their own scores (parallel arrays): the {@code take} best, best first, ties by id. */
    private static int[] best(int[] ids, double[] values, int take) {
        Integer[] order = new Integer[ids.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> values[a] > values[b] ? -1 : values[a] < values[b] ? 1 : Integer.compare(ids[a], ids[b]));
        int[] best = new int[take];
        for (int i = 0; i < take; i++) best[i] = ids[order[i]];
        return best;
    }

    /** What the strip ranks by: the model's log-probs, mixed with the cache if there is one (§12). */
    public double[] scores() {
        if (scores == null) {
            if (cache == null) {
                scores = new double[logProbs.length];
                for (int i = 0; i < scores.length; i++) scores[i] = logProbs[i];
            } else {
                scores = cache.mix(logProbs, fed.get(fed.size() - 1));
            }
        }
        return scores;
    }

    private int lowerBound(String key) {
        int lo = 0, hi = keys.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (CodePoints.compare(keys[mid], key) < 0) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    private boolean sentenceInitial() {
        return !fed.isEmpty() && fed.get(fed.size() - 1) == Vocabulary.BOS_ID;
    }

    /**
     * A lexicon or user word's shown form (§16): with a typed prefix, all capitals typed make it
     * upper case; a word whose first letters are lower case takes the typed prefix's case; else
     * its own form. Without one, a sentence start capitalises its first code point.
     */
    private String displayExtra(String word, String typed, String prefixToken) {
        if (!typed.isEmpty()) {
            if (CodePoints.length(typed) > 1 && isUpper(typed)) return upper(word);
            int n = CodePoints.length(prefixToken);
            String head = CodePoints.length(word) > n ? word.substring(0, word.offsetByCodePoints(0, n)) : word;
            return head.equals(lower(head)) ? typed + CodePoints.from(word, n) : word;
        }
        if (!sentenceInitial() || word.isEmpty()) return word;
        int first = Character.charCount(word.codePointAt(0));
        return upper(word.substring(0, first)) + word.substring(first);
    }

    /** Keyboard casing: the typed prefix's case kept; sentence starts and "i" capitalised (§5). */
    private String display(String token, String typed, String prefixToken) {
        if (!typed.isEmpty()) {
            String rest = CodePoints.from(token, CodePoints.length(tokenizer.lowercase(prefixToken)));
            return typed + (CodePoints.length(typed) > 1 && isUpper(typed) ? upper(rest) : rest);
        }
        if (token.equals("i") || token.startsWith("i'")) return "I" + token.substring(1);
        if (!sentenceInitial() || token.isEmpty()) return token;
        int first = Character.charCount(token.codePointAt(0));
        return upper(token.substring(0, first)) + token.substring(first);
    }

    /** Python's str.isupper: some cased character, and no lowercase or titlecase one. */
    static boolean isUpper(String s) {
        boolean cased = false;
        for (int cp : CodePoints.of(s)) {
            if (Character.isLowerCase(cp) || Character.isTitleCase(cp)) return false;
            if (Character.isUpperCase(cp)) cased = true;
        }
        return cased;
    }

    private static String upper(String s) {
        return s.toUpperCase(Locale.ROOT);
    }

    private static String lower(String s) {
        return s.toLowerCase(Locale.ROOT);
    }

    // -- read-only state ------------------------------------------------------------------

    public String text() {
        return text;
    }

    /** The word being typed (normalized as the tokenizer reads it), or "". */
    public String prefix() {
        return prefix;
    }

    /** Words on the strip (at most; §3). */
    public int stripSize() {
        return stripSize;
    }

    /** Where the fed ids begin in the text (UTF-16), for tests. */
    public int base() {
        return base;
    }

    /** The ids stepped so far (bos first), for traces and tests. */
    public List<Integer> fedIds() {
        return new ArrayList<>(fed);
    }

    /** The latest step's log-probabilities (do not modify); null in a private field. */
    public float[] logProbs() {
        return logProbs;
    }

    /** Whether the field is private (reset with privateField): the engine only follows its text. */
    public boolean isPrivate() {
        return privateField;
    }

    public PersonalCache cache() {
        return cache;
    }

    /** The words the user teaches it (list, add, remove, save: {@link UserWords}), or null: none. */
    public UserWords userWords() {
        return userWords;
    }

    /** The bundle's lexicon, or null. */
    public Lexicon lexicon() {
        return lexicon;
    }

    /**
     * True if the strip could ever show {@code word}: one token, a suggestible vocabulary word,
     * a lexicon word or a learned user word, or a compound of such words joined by {@code -}
     * (kblm simulate's reachable words, §4.1, §16).
     */
    public boolean reachable(String word) {
        List<String> tokens = tokenizer.tokenize(word, vocab.lowercase());
        if (tokens.size() != 1) return false;
        if (reachableToken(tokens.get(0))) return true;
        String[] parts = tokens.get(0).split("-", -1);  // a compound (§4.1): each part completes in its turn
        if (parts.length < 2) return false;
        for (String part : parts) {
            if (part.isEmpty() || !reachableToken(part)) return false;
        }
        return true;
    }

    private boolean reachableToken(String token) {
        int id = vocab.id(token);
        if (id != Vocabulary.UNK_ID) return suggestible[id];
        String key = tokenizer.lowercase(token);
        return (lexicon != null && lexicon.containsKey(key)) || (userWords != null && userWords.learned(key));
    }

    private static int[] toArray(List<Integer> list) {
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) out[i] = list.get(i);
        return out;
    }
}

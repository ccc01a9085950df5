package main

import (
	"regexp"
	"strings"
)

// Words that start a summary without being a verb in the third person.
var notVerbs = map[string]bool{
	"This": true, "Its": true, "Is": true, "As": true, "Was": true, "Has": true, "Gradients": true,
	"Ops": true, "Tensors": true, "Outputs": false, "Bytes": true, "Indices": true, "Values": true,
	"Options": true, "Always": true, "Always,": true, "Various": true, "Dataset": true, "Sparse": true,
}

// Adverbs that may precede a verb in the third person.
var adverbs = map[string]bool{"Elementwise": true, "Component-wise": true}

// Imperative verbs that start summaries ("Multiply the matrix ..."), to put
// in the third person after the op's name ("MatMul multiplies ...").
var imperatives = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`Add Adjust Advance Apply Assert Assign Batch Bitcast Broadcast
		Bucketize Calculate Cast Check Clip Close Compute Concat Concatenate Convert Copy Count Create
		Decode Decompress Delete Dequantize Dequeue Deserialize Draw Dump Encode Enqueue Ensure Extract
		Fetch Fill Find Flush Gather Generate Get Initialize Insert Interleave Invert Load Lookup Make
		Map Merge Multiply Normalize Pack Pad Parse Partition Perform Permute Pop Print Produce Push
		Quantize Raise Read Receive Record Reduce Register Reinterpret Remove Replace Requantize Reset
		Reshape Resize Restore Retrieve Return Reverse Run Save Scatter Select Send Serialize Set Shuffle
		Sort Split Stage Start Stop Store Subtract Take Transform Transpose Unpack Update Use Write Zero
		Fake-quantize Emit Output Sample Repeat Slice Shard Compress Uncompress Append Rotate
		Strip Transcode Determine Crop`) {
		m[w] = true
	}
	return m
}()

// thirdPerson conjugates an imperative verb: "Multiply" -> "multiplies".
func thirdPerson(verb string) string {
	v := strings.ToLower(verb[:1]) + verb[1:]
	switch {
	case strings.HasSuffix(v, "y") && len(v) > 1 && !strings.ContainsAny(v[len(v)-2:len(v)-1], "aeiou"):
		return v[:len(v)-1] + "ies"
	case strings.HasSuffix(v, "s"), strings.HasSuffix(v, "x"), strings.HasSuffix(v, "z"),
		strings.HasSuffix(v, "ch"), strings.HasSuffix(v, "sh"):
		return v + "es"
	case v == "do" || v == "go":
		return v + "es"
	}
	return v + "s"
}

// leadSentence makes a summary start with the Go name, as Go doc comments
// do: "Computes x" -> "Name computes x", "Multiply a" -> "Name multiplies a",
// "A queue ..." -> "Name is a queue ...", otherwise "Name: summary".
func leadSentence(name, summary string) string {
	summary = strings.TrimSpace(summary)
	if summary == "" {
		return name + "."
	}
	first, rest, _ := strings.Cut(summary, " ")
	lower := func(w string) string {
		// Keep acronyms and CamelCase names ("ND", "BatchToSpace") as they are.
		if len(w) > 1 && strings.ToUpper(w[1:2]) == w[1:2] && strings.ToLower(w[1:2]) != w[1:2] {
			return w
		}
		return strings.ToLower(w[:1]) + w[1:]
	}
	switch {
	case first == "A" || first == "An" || first == "The":
		return name + " is " + lower(first) + " " + rest
	case first == "Op" || first == "Operation":
		return name + " is an " + lower(first) + " " + rest
	case first == "Deprecated." || first == "Deprecated,":
		return name + " is deprecated" + first[len(first)-1:] + " " + rest
	case isWord(first) && imperatives[first]:
		return name + " " + thirdPerson(first) + " " + rest
	case (adverbs[first] || isWord(first) && strings.HasSuffix(first, "ly")) && strings.HasSuffix(strings.Fields(rest + " x")[0], "s"):
		return name + " " + lower(first) + " " + rest // "Greedily selects ...", "Elementwise computes ..."
	case isWord(first) && strings.HasSuffix(first, "s") && !strings.HasSuffix(first, "ss") &&
		!strings.HasSuffix(first, "us") && !notVerbs[first]:
		return name + " " + lower(first) + " " + rest
	}
	return name + ": " + summary
}

var (
	isWord      = regexp.MustCompile(`^[A-Z][a-z]+(-[a-z]+)?$`).MatchString
	fence       = regexp.MustCompile("^\\s*```")
	listMarker  = regexp.MustCompile(`^([*+-]|\d+[.)])\s+\S`)
	heading     = regexp.MustCompile(`^#{1,6}\s+(\S.*?)\s*#*$`)
	blankRuns   = regexp.MustCompile(`\n{3,}`)
	pythonTypes = strings.NewReplacer("`Tensor` objects", "tensors", "`Tensor`s", "tensors", "`Tensor`", "tensor")
)

// convertBody turns a docstring description (Markdown as TensorFlow writes
// it) into Go doc comment lines: fenced and doctest code becomes indented
// code blocks, Markdown lists become Go lists, "## Title" a Go heading,
// tables stay preformatted.
func convertBody(lines []string) []string {
	var out []string
	emit := func(s string) { out = append(out, s) }
	blank := func() {
		if len(out) > 0 && out[len(out)-1] != "" {
			emit("")
		}
	}
	inFence, fenceIndent := false, 0
	inList, inDoctest := false, false
	prevBlank := true
	for _, l := range lines {
		if fence.MatchString(l) {
			if !inFence {
				blank()
				fenceIndent = indentOf(l)
			} else {
				emit("")
			}
			inFence = !inFence
			inList, inDoctest, prevBlank = false, false, true
			continue
		}
		if inFence {
			if strings.TrimSpace(l) == "" {
				emit("")
				continue
			}
			cut := min(fenceIndent, indentOf(l))
			emit("    " + l[cut:])
			continue
		}
		if strings.TrimSpace(l) == "" {
			emit("")
			inDoctest, prevBlank = false, true
			continue
		}
		ind := indentOf(l)
		t := strings.TrimSpace(l)
		switch {
		case inDoctest || (prevBlank && ind == 0 && strings.HasPrefix(t, ">>>")):
			inDoctest, inList = true, false
			emit("    " + l)
		case ind == 0 && listMarker.MatchString(t):
			inList = true
			emit("  " + l)
		case ind == 0 && inList && !prevBlank:
			emit("    " + l)
		case inList && ind > 0:
			emit("    " + t)
		case ind == 0 && strings.HasPrefix(t, "|"):
			inList = false
			emit("    " + l)
		case ind == 0 && heading.MatchString(t) && (prevBlank || len(out) == 0):
			inList = false
			blank()
			emit("# " + heading.FindStringSubmatch(t)[1])
			emit("")
		case ind > 0:
			inList = false
			emit("  " + l)
		default:
			inList = false
			emit(l)
		}
		prevBlank = false
	}
	return collapseBlank(out)
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// collapseBlank drops leading, trailing and repeated blank lines.
func collapseBlank(lines []string) []string {
	var out []string
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, l)
	}
	return trimBlank(out)
}

// attrPreamble is the sentence Python puts before an attr's own doc: "An
// optional `int` that is `>= 1`. Defaults to `1`.", "A list of `ints`.",
// "A `tf.DType` from: `tf.int32, tf.int64`." — Python's wording of what
// the Go signature and the generated notes already say.
func stripAttrPreamble(text string) string {
	if !strings.HasPrefix(text, "A ") && !strings.HasPrefix(text, "An ") {
		return text
	}
	end := sentenceEnd(text)
	if end < 0 {
		return text
	}
	rest := strings.TrimLeft(text[end:], " ")
	if strings.HasPrefix(rest, "Defaults to `") {
		if e := sentenceEnd(rest); e >= 0 {
			rest = strings.TrimLeft(rest[e:], " ")
		} else {
			rest = ""
		}
	}
	return strings.TrimLeft(rest, " \n")
}

// sentenceEnd returns the index just after the first "." outside backquotes
// that ends the text or is followed by a space or newline, or -1.
func sentenceEnd(s string) int {
	inCode := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '`':
			inCode = !inCode
		case '.':
			if !inCode && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n') {
				return i + 1
			}
		}
	}
	return -1
}

// itemText formats an Args/Returns text as the body of a Go list item: the
// continuation lines are trimmed (a Go list item cannot hold code blocks)
// and blank lines dropped.
func itemText(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(l); t != "" && !fence.MatchString(t) {
			out = append(out, t)
		}
	}
	return out
}

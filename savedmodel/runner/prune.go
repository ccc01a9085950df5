package runner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
)

// parseInput splits a GraphDef node input: "op", "op:2" or "^op" (a
// control input).
func parseInput(in string) (op string, index int, control bool) {
	if strings.HasPrefix(in, "^") {
		return in[1:], -1, true
	}
	if i := strings.LastIndexByte(in, ':'); i >= 0 {
		if n, err := strconv.Atoi(in[i+1:]); err == nil {
			return in[:i], n, false
		}
	}
	return in, 0, false
}

// tensorKey names a tensor "op:index".
func tensorKey(op string, index int) string { return op + ":" + strconv.Itoa(index) }

// graphIndex indexes a GraphDef's nodes by name.
type graphIndex struct {
	gd    *graphpb.GraphDef
	nodes map[string]*ndpb.NodeDef
}

func newGraphIndex(gd *graphpb.GraphDef) *graphIndex {
	ix := &graphIndex{gd: gd, nodes: make(map[string]*ndpb.NodeDef, len(gd.GetNode()))}
	for _, n := range gd.GetNode() {
		ix.nodes[n.GetName()] = n
	}
	return ix
}

// ancestors returns the nodes roots need to run: the roots and everything
// their data and control inputs reach.
func (ix *graphIndex) ancestors(roots []string) (map[string]bool, error) {
	keep := map[string]bool{}
	stack := append([]string(nil), roots...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[name] {
			continue
		}
		n, ok := ix.nodes[name]
		if !ok {
			return nil, fmt.Errorf("the graph has no node %q", name)
		}
		keep[name] = true
		for _, in := range n.GetInput() {
			op, _, _ := parseInput(in)
			if !keep[op] {
				stack = append(stack, op)
			}
		}
	}
	return keep, nil
}

// unfedPlaceholder returns the first Placeholder that fetching from roots
// needs when the tensors in fed are fed (a data edge from a fed tensor is
// not followed), and the root that needs it; "" when there is none.
func (ix *graphIndex) unfedPlaceholder(roots []string, fed map[string]bool) (placeholder, root string) {
	for _, r := range roots {
		seen := map[string]bool{}
		stack := []string{r}
		for len(stack) > 0 {
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[name] {
				continue
			}
			seen[name] = true
			n := ix.nodes[name]
			if n == nil {
				continue
			}
			if n.GetOp() == "Placeholder" {
				return name, r
			}
			for _, in := range n.GetInput() {
				op, idx, control := parseInput(in)
				if !control && fed[tensorKey(op, idx)] {
					continue
				}
				stack = append(stack, op)
			}
		}
	}
	return "", ""
}

// prune returns a GraphDef holding only the nodes in keep (in their
// order), the library functions they call (transitively), and colocation
// constraints only towards kept nodes.
func (ix *graphIndex) prune(keep map[string]bool, clearDevices bool) *graphpb.GraphDef {
	out := &graphpb.GraphDef{Versions: ix.gd.GetVersions()}
	for _, n := range ix.gd.GetNode() {
		if !keep[n.GetName()] {
			continue
		}
		c := cloneNode(n)
		if clearDevices {
			c.Device = ""
		}
		if cls := c.GetAttr()["_class"].GetList(); cls != nil {
			var locs [][]byte
			for _, s := range cls.GetS() {
				if loc, ok := strings.CutPrefix(string(s), "loc:@"); !ok || keep[loc] {
					locs = append(locs, s)
				}
			}
			if len(locs) == 0 {
				delete(c.Attr, "_class")
			} else {
				c.Attr["_class"] = &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{S: locs}}}
			}
		}
		out.Node = append(out.Node, c)
	}
	out.Library = pruneLibrary(ix.gd.GetLibrary(), out.Node)
	return out
}

func cloneNode(n *ndpb.NodeDef) *ndpb.NodeDef {
	c := &ndpb.NodeDef{
		Name:                  n.GetName(),
		Op:                    n.GetOp(),
		Input:                 append([]string(nil), n.GetInput()...),
		Device:                n.GetDevice(),
		Attr:                  make(map[string]*attrpb.AttrValue, len(n.GetAttr())),
		ExperimentalDebugInfo: n.GetExperimentalDebugInfo(),
		ExperimentalType:      n.GetExperimentalType(),
	}
	for k, v := range n.GetAttr() {
		c.Attr[k] = v
	}
	return c
}

// pruneLibrary keeps the functions nodes call (as op types or through func
// attrs), transitively, and their gradients.
func pruneLibrary(lib *fnpb.FunctionDefLibrary, nodes []*ndpb.NodeDef) *fnpb.FunctionDefLibrary {
	if lib == nil || (len(lib.GetFunction()) == 0 && len(lib.GetGradient()) == 0) {
		return nil
	}
	fns := map[string]*fnpb.FunctionDef{}
	for _, f := range lib.GetFunction() {
		fns[f.GetSignature().GetName()] = f
	}
	grads := map[string]string{}
	for _, g := range lib.GetGradient() {
		grads[g.GetFunctionName()] = g.GetGradientFunc()
	}
	used := map[string]bool{}
	var stack []string
	use := func(name string) {
		if _, ok := fns[name]; ok && !used[name] {
			used[name] = true
			stack = append(stack, name)
		}
	}
	visit := func(n *ndpb.NodeDef) {
		use(n.GetOp())
		for _, a := range n.GetAttr() {
			funcRefs(a, use)
		}
	}
	for _, n := range nodes {
		visit(n)
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f := fns[name]
		for _, n := range f.GetNodeDef() {
			visit(n)
		}
		for _, a := range f.GetAttr() {
			funcRefs(a, use)
		}
		if g, ok := grads[name]; ok {
			use(g)
		}
	}
	if len(used) == 0 {
		return nil
	}
	out := &fnpb.FunctionDefLibrary{}
	for _, f := range lib.GetFunction() {
		if used[f.GetSignature().GetName()] {
			out.Function = append(out.Function, f)
		}
	}
	for _, g := range lib.GetGradient() {
		if used[g.GetFunctionName()] {
			out.Gradient = append(out.Gradient, g)
		}
	}
	return out
}

// funcRefs calls use with every function an attr value names.
func funcRefs(a *attrpb.AttrValue, use func(string)) {
	if f := a.GetFunc(); f != nil {
		use(f.GetName())
		for _, v := range f.GetAttr() {
			funcRefs(v, use)
		}
	}
	for _, f := range a.GetList().GetFunc() {
		use(f.GetName())
		for _, v := range f.GetAttr() {
			funcRefs(v, use)
		}
	}
}

// opTypes lists the op types a GraphDef uses, in its nodes and its
// functions' bodies, except calls of its own functions; sorted.
func opTypes(gd *graphpb.GraphDef) []string {
	fns := map[string]bool{}
	for _, f := range gd.GetLibrary().GetFunction() {
		fns[f.GetSignature().GetName()] = true
	}
	set := map[string]bool{}
	add := func(n *ndpb.NodeDef) {
		if !fns[n.GetOp()] {
			set[n.GetOp()] = true
		}
	}
	for _, n := range gd.GetNode() {
		add(n)
	}
	for _, f := range gd.GetLibrary().GetFunction() {
		for _, n := range f.GetNodeDef() {
			add(n)
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

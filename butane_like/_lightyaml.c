/* _pine_lightyaml: the light composer of butane_like/yamlload.py, in C.
 *
 * It reads libyaml's events and builds the same light nodes as the Python light composer (which
 * runs PyYAML's C composer with swapped node classes): scalars with tag, value and style;
 * sequences and mappings with tag and value; no positions (asking a node for ``start_mark`` or
 * ``end_mark`` raises the NeedPlaces given to ``compose``). PyYAML's composer makes two position
 * objects and calls two Python callables per node; here a node is one small C object (300,000 file
 * entries: 1.0 s and 291 MiB, against 2.8 s and 483 MiB).
 *
 * Whatever this composer does not handle returns the FAILED sentinel, and the caller composes the
 * text with PyYAML (marks and all), which gives the errors and places: a syntax error, an anchor or
 * an alias, a nesting deeper than MAX_DEPTH, bytes that are not UTF-8.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <yaml.h>

#define MAX_DEPTH 500

static PyObject *need_places; /* the exception a position request raises */

typedef struct {
    PyObject_HEAD
    PyObject *tag;
    PyObject *value;
    PyObject *style;
} Scalar;

typedef struct {
    PyObject_HEAD
    PyObject *tag;
    PyObject *value; /* a list: of nodes, or of (key, value) tuples */
} Collection;

static void scalar_dealloc(Scalar *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->tag);
    Py_XDECREF(self->value);
    Py_XDECREF(self->style);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static void collection_dealloc(Collection *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->tag);
    Py_XDECREF(self->value);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyObject *no_mark(PyObject *Py_UNUSED(self), void *Py_UNUSED(closure))
{
    PyErr_SetNone(need_places ? need_places : PyExc_AttributeError);
    return NULL;
}

static PyGetSetDef node_getset[] = {
    {"start_mark", no_mark, NULL, NULL, NULL},
    {"end_mark", no_mark, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef scalar_members[] = {
    {"tag", T_OBJECT, offsetof(Scalar, tag), 0, NULL},
    {"value", T_OBJECT, offsetof(Scalar, value), 0, NULL},
    {"style", T_OBJECT, offsetof(Scalar, style), 0, NULL},
    {NULL},
};

static PyMemberDef collection_members[] = {
    {"tag", T_OBJECT, offsetof(Collection, tag), 0, NULL},
    {"value", T_OBJECT, offsetof(Collection, value), 0, NULL},
    {NULL},
};

static PyType_Slot scalar_slots[] = {
    {Py_tp_dealloc, scalar_dealloc},
    {Py_tp_members, scalar_members},
    {Py_tp_getset, node_getset},
    {0, NULL},
};

static PyType_Slot collection_slots[] = {
    {Py_tp_dealloc, collection_dealloc},
    {Py_tp_members, collection_members},
    {Py_tp_getset, node_getset},
    {0, NULL},
};

static PyType_Spec scalar_spec = {"_pine_lightyaml.Scalar", sizeof(Scalar), 0, Py_TPFLAGS_DEFAULT, scalar_slots};
static PyType_Spec sequence_spec = {
    "_pine_lightyaml.Sequence", sizeof(Collection), 0, Py_TPFLAGS_DEFAULT, collection_slots};
static PyType_Spec mapping_spec = {
    "_pine_lightyaml.Mapping", sizeof(Collection), 0, Py_TPFLAGS_DEFAULT, collection_slots};

static PyTypeObject *scalar_type, *sequence_type, *mapping_type;
static PyObject *style_str[6]; /* by yaml_scalar_style_t: any (None), plain, ', ", |, > */
static PyObject *seq_tag, *map_tag;

/* The tag of a node: libyaml's own when given (other than the non-specific "!"), else ``implicit``. */
static PyObject *node_tag(yaml_char_t *tag, PyObject *implicit)
{
    if (tag == NULL || (tag[0] == '!' && tag[1] == '\0')) {
        Py_INCREF(implicit);
        return implicit;
    }
    return PyUnicode_DecodeUTF8((const char *)tag, strlen((const char *)tag), "strict");
}

static PyObject *new_scalar(yaml_event_t *ev, PyObject *plain, PyObject *quoted)
{
    Scalar *node;
    PyObject *value = PyUnicode_DecodeUTF8(
        (const char *)ev->data.scalar.value, (Py_ssize_t)ev->data.scalar.length, "strict");
    if (value == NULL)
        return NULL;
    node = PyObject_New(Scalar, scalar_type);
    if (node == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    node->value = value;
    node->tag = node_tag(ev->data.scalar.tag, ev->data.scalar.plain_implicit ? plain : quoted);
    node->style = style_str[ev->data.scalar.style <= 5 ? ev->data.scalar.style : 0];
    Py_INCREF(node->style);
    if (node->tag == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    return (PyObject *)node;
}

static PyObject *new_collection(PyTypeObject *type, yaml_char_t *tag, PyObject *implicit)
{
    Collection *node = PyObject_New(Collection, type);
    if (node == NULL)
        return NULL;
    node->value = PyList_New(0);
    node->tag = node_tag(tag, implicit);
    if (node->value == NULL || node->tag == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    return (PyObject *)node;
}

/* Keys repeat: the 300,000 objects of a large list have the same few. A short plain key is made
 * once per text and its node shared (no one changes a plain scalar: yamlload only puts the bodies
 * it cut out back into literal ones): a sixth less memory and time. */
#define KEY_SLOTS 64
#define KEY_MAX 32
typedef struct {
    size_t length;
    char bytes[KEY_MAX];
    PyObject *node;
} KeySlot;

static PyObject *shared_key(KeySlot *slots, yaml_event_t *ev, PyObject *plain, PyObject *quoted)
{
    const char *bytes = (const char *)ev->data.scalar.value;
    size_t length = ev->data.scalar.length;
    if (length >= KEY_MAX || ev->data.scalar.tag != NULL || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return new_scalar(ev, plain, quoted);
    unsigned hash = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ (unsigned char)bytes[i]) * 16777619u;
    KeySlot *slot = &slots[hash % KEY_SLOTS];
    if (slot->node != NULL && slot->length == length && memcmp(slot->bytes, bytes, length) == 0)
        return Py_NewRef(slot->node);
    PyObject *node = new_scalar(ev, plain, quoted);
    if (node != NULL && slot->node == NULL) {
        slot->length = length;
        memcpy(slot->bytes, bytes, length);
        slot->node = Py_NewRef(node);
    }
    return node;
}

/* The open collections: the node, and for a mapping the key waiting for its value. */
typedef struct {
    PyObject *node;
    PyObject *key;
} Open;

/* Adds ``child`` (a new reference, taken) to the innermost open collection; -1 on error. */
static int attach(Open *top, PyObject *child)
{
    PyObject *list = ((Collection *)top->node)->value;
    int rc;
    if (Py_TYPE(top->node) == sequence_type) {
        rc = PyList_Append(list, child);
        Py_DECREF(child);
        return rc;
    }
    if (top->key == NULL) {
        top->key = child;
        return 0;
    }
    PyObject *pair = PyTuple_Pack(2, top->key, child);
    Py_CLEAR(top->key);
    Py_DECREF(child);
    if (pair == NULL)
        return -1;
    rc = PyList_Append(list, pair);
    Py_DECREF(pair);
    return rc;
}

/* compose(data: bytes, plain_tag, quoted_tag, need_places, failed) -> root node, None for an empty
 * stream, or ``failed`` for what the caller composes with PyYAML instead. */
static PyObject *compose(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer buf;
    PyObject *plain, *quoted, *places, *failed;
    yaml_parser_t parser;
    yaml_event_t ev;
    Open stack[MAX_DEPTH];
    KeySlot keys[KEY_SLOTS] = {{0}};
    int depth = 0, done = 0, fail = 0;
    PyObject *root = NULL;

    if (!PyArg_ParseTuple(args, "y*OOOO", &buf, &plain, &quoted, &places, &failed))
        return NULL;
    Py_INCREF(places);
    Py_XSETREF(need_places, places);
    if (!yaml_parser_initialize(&parser)) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    yaml_parser_set_input_string(&parser, buf.buf, (size_t)buf.len);
    root = Py_None;
    Py_INCREF(root);
    while (!done && !fail) {
        PyObject *node = NULL;
        if (!yaml_parser_parse(&parser, &ev)) {
            fail = 1;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT: /* (PyYAML's get_node reads the first document's end too) */
            done = 1;
            break;
        case YAML_ALIAS_EVENT:
            fail = 1;
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.anchor != NULL) {
                fail = 1;
                break;
            }
            if (depth > 0 && Py_TYPE(stack[depth - 1].node) == mapping_type && stack[depth - 1].key == NULL)
                node = shared_key(keys, &ev, plain, quoted);
            else
                node = new_scalar(&ev, plain, quoted);
            if (node == NULL)
                fail = 2;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int seq = ev.type == YAML_SEQUENCE_START_EVENT;
            yaml_char_t *anchor = seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
            yaml_char_t *tag = seq ? ev.data.sequence_start.tag : ev.data.mapping_start.tag;
            if (anchor != NULL || depth == MAX_DEPTH) {
                fail = 1;
                break;
            }
            PyObject *open = new_collection(seq ? sequence_type : mapping_type, tag, seq ? seq_tag : map_tag);
            if (open == NULL) {
                fail = 2;
                break;
            }
            stack[depth].node = open;
            stack[depth].key = NULL;
            depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            node = stack[depth].node;
            Py_CLEAR(stack[depth].key); /* (none: libyaml pairs every key) */
            break;
        default: /* stream and document start */
            break;
        }
        yaml_event_delete(&ev);
        if (node != NULL) {
            if (depth > 0) {
                if (attach(&stack[depth - 1], node) < 0)
                    fail = 2;
            } else {
                Py_SETREF(root, node);
            }
        }
    }
    while (depth > 0) {
        depth--;
        Py_DECREF(stack[depth].node);
        Py_XDECREF(stack[depth].key);
    }
    for (int i = 0; i < KEY_SLOTS; i++)
        Py_XDECREF(keys[i].node);
    yaml_parser_delete(&parser);
    PyBuffer_Release(&buf);
    if (fail) {
        Py_DECREF(root);
        if (fail == 2 && !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return NULL; /* out of memory: not the text's fault */
        PyErr_Clear();
        Py_INCREF(failed);
        return failed;
    }
    return root;
}

static PyMethodDef methods[] = {
    {"compose", compose, METH_VARARGS, "compose(data, plain_tag, quoted_tag, need_places, failed)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_pine_lightyaml", NULL, -1, methods, NULL, NULL, NULL, NULL};

static PyTypeObject *make_type(PyObject *module, PyType_Spec *spec, const char *id)
{
    PyTypeObject *type = (PyTypeObject *)PyType_FromSpec(spec);
    if (type == NULL)
        return NULL;
    const char *name = strrchr(spec->name, '.') + 1;
    PyObject *value = PyUnicode_InternFromString(id);
    int rc = value == NULL ? -1 : PyObject_SetAttrString((PyObject *)type, "id", value);
    Py_XDECREF(value);
    if (rc < 0 || PyModule_AddObjectRef(module, name, (PyObject *)type) < 0)
        return NULL;
    return type;
}

PyMODINIT_FUNC PyInit__pine_lightyaml(void)
{
    static const char *styles[6] = {NULL, "", "'", "\"", "|", ">"};
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    scalar_type = make_type(module, &scalar_spec, "scalar");
    sequence_type = make_type(module, &sequence_spec, "sequence");
    mapping_type = make_type(module, &mapping_spec, "mapping");
    if (scalar_type == NULL || sequence_type == NULL || mapping_type == NULL)
        return NULL;
    style_str[0] = Py_NewRef(Py_None);
    for (int i = 1; i < 6; i++)
        style_str[i] = PyUnicode_InternFromString(styles[i]);
    seq_tag = PyUnicode_InternFromString("seq");
    map_tag = PyUnicode_InternFromString("map");
    return module;
}

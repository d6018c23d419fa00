/** The reference sample's fixtures (osisoft/sample-omf-basic_api-python OMF-Types.json / OMF-Containers.json, notes §3.3). Test-only. */
export const SEED_TYPES = [
  {
    id: "FirstDynamicType",
    name: "First dynamic type",
    classification: "dynamic",
    type: "object",
    description: "First dynamic type for samples",
    properties: {
      Timestamp: { format: "date-time", type: "string", isindex: true, name: "not in use", description: "not in use" },
      IntegerProperty: {
        type: "integer",
        name: "Integer Property",
        description: "PI point data referenced integer attribute",
        uom: "count",
      },
    },
  },
  {
    id: "SecondDynamicType",
    name: "Second dynamic type",
    classification: "dynamic",
    type: "object",
    description: "Second dynamic type for samples",
    properties: {
      Timestamp: { format: "date-time", type: "string", isindex: true, name: "not in use", description: "not in use" },
      NumberProperty1: {
        type: "number",
        name: "Number Property 1",
        description: "PI point data referenced number attribute 1",
        format: "float64",
        uom: "%",
      },
      NumberProperty2: {
        type: "number",
        name: "Number Property 2",
        description: "PI point data referenced number attribute 2",
        format: "float64",
        uom: "V",
      },
      StringEnum: {
        type: "string",
        enum: ["False", "True"],
        name: "String Enumeration",
        description: "String enumeration to replace boolean type",
      },
    },
  },
  {
    id: "ThirdDynamicType",
    name: "Third dynamic type",
    classification: "dynamic",
    type: "object",
    description: "Third dynamic type for samples",
    properties: {
      Timestamp: { format: "date-time", type: "string", isindex: true, name: "not in use", description: "not in use" },
      IntegerEnum: {
        type: "integer",
        format: "int16",
        name: "Integer Enumeration",
        description: "Integer enumeration to replace boolean type",
        enum: [0, 1],
      },
    },
  },
] as const;

export const SEED_CONTAINERS = [
  { id: "FirstContainer", typeid: "FirstDynamicType" },
  { id: "SecondContainer", typeid: "FirstDynamicType" },
  { id: "ThirdContainer", typeid: "SecondDynamicType" },
  { id: "FourthContainer", typeid: "ThirdDynamicType" },
] as const;

/** Expected PI points for the seed (notes §3.3). */
export const SEED_POINTS = [
  "FirstContainer",
  "SecondContainer",
  "ThirdContainer.NumberProperty1",
  "ThirdContainer.NumberProperty2",
  "ThirdContainer.StringEnum",
  "FourthContainer",
];

/** program.py's get_data for one iteration: `datetime.utcnow().isoformat() + 'Z'` (microseconds). */
export function seedData(iteration: number, now = new Date()) {
  const ts = `${now.toISOString().slice(0, 23)}${String(iteration * 137 + 456).padStart(3, "0")}Z`;
  const r = () => Math.random();
  return [
    { containerid: "FirstContainer", values: [{ Timestamp: ts, IntegerProperty: Math.floor(100 * r()) }] },
    { containerid: "SecondContainer", values: [{ Timestamp: ts, IntegerProperty: Math.floor(100 * r()) }] },
    {
      containerid: "ThirdContainer",
      values: [{ Timestamp: ts, NumberProperty1: 100 * r(), NumberProperty2: 100 * r(), StringEnum: iteration % 2 ? "True" : "False" }],
    },
    { containerid: "FourthContainer", values: [{ Timestamp: ts, IntegerEnum: iteration % 2 }] },
  ];
}

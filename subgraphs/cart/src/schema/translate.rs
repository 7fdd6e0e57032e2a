//! SDL definitions → dynamic schema types, one translation per kind of definition.

use std::collections::BTreeSet;

use async_graphql::{
    dynamic::{Enum, EnumItem, Field, InputObject, InputValue, Object, Scalar, Schema, SchemaBuilder, TypeRef},
    parser::{
        Positioned,
        types::{BaseType, ConstDirective, FieldDefinition, InputValueDefinition, Type, TypeDefinition, TypeKind},
    },
};
use vitrina_shared::auth::{
    guards::check_access,
    rules::{Root, rule_for},
};

use super::{Resolve, Resolvers, SchemaError};

const BUILT_IN_DIRECTIVES: &[&str] = &["include", "skip", "deprecated", "specifiedBy", "oneOf"];

pub(super) fn build(
    sdl: &str,
    resolvers: Resolvers,
    configure: impl FnOnce(SchemaBuilder) -> SchemaBuilder,
) -> Result<Schema, SchemaError> {
    let document = async_graphql::parser::parse_schema(sdl).map_err(|error| SchemaError::Parse(error.to_string()))?;
    let mut types = Vec::new();
    let mut has_mutation = false;
    for definition in document.definitions {
        match definition {
            async_graphql::parser::types::TypeSystemDefinition::Type(definition) => {
                has_mutation |= definition.node.name.node == "Mutation";
                types.push(definition.node);
            }
            // `extend schema @link(...)`: the federation version this subgraph speaks;
            // async-graphql prints its own link, and the SDL test compares the two.
            async_graphql::parser::types::TypeSystemDefinition::Schema(schema) if schema.node.extend => {}
            async_graphql::parser::types::TypeSystemDefinition::Schema(_) => {
                return Err(SchemaError::Unsupported("a `schema` definition".to_owned()));
            }
            // The executable directives every GraphQL server defines; async-graphql adds its own.
            async_graphql::parser::types::TypeSystemDefinition::Directive(directive)
                if BUILT_IN_DIRECTIVES.contains(&directive.node.name.node.as_str()) => {}
            async_graphql::parser::types::TypeSystemDefinition::Directive(directive) => {
                return Err(SchemaError::Unsupported(format!(
                    "directive definition @{}",
                    directive.node.name.node
                )));
            }
        }
    }

    let mut unused: BTreeSet<(String, String)> = resolvers.by_field.keys().cloned().collect();
    let mut builder = Schema::build("Query", has_mutation.then_some("Mutation"), None).enable_federation();
    for definition in &types {
        builder = match &definition.kind {
            TypeKind::Object(object) => {
                builder.register(translate_object(definition, &object.fields, &resolvers, &mut unused)?)
            }
            TypeKind::InputObject(input) => builder.register(translate_input(definition, &input.fields)?),
            TypeKind::Enum(enumeration) => {
                let mut translated = Enum::new(definition.name.node.as_str());
                for value in &enumeration.values {
                    let mut item = EnumItem::new(value.node.value.node.as_str());
                    if let Some(description) = &value.node.description {
                        item = item.description(description.node.as_str());
                    }
                    translated = translated.item(item);
                }
                builder.register(describe_enum(translated, definition))
            }
            TypeKind::Scalar => {
                let mut scalar = Scalar::new(definition.name.node.as_str());
                if let Some(description) = &definition.description {
                    scalar = scalar.description(description.node.as_str());
                }
                builder.register(scalar)
            }
            TypeKind::Interface(_) | TypeKind::Union(_) => {
                return Err(SchemaError::Unsupported(format!(
                    "interface or union `{}`",
                    definition.name.node
                )));
            }
        };
    }
    if let Some((type_name, field)) = unused.into_iter().next() {
        return Err(SchemaError::UnusedResolver { type_name, field });
    }
    configure(builder)
        .finish()
        .map_err(|error| SchemaError::Invalid(error.to_string()))
}

fn describe_enum(translated: Enum, definition: &TypeDefinition) -> Enum {
    match &definition.description {
        Some(description) => translated.description(description.node.as_str()),
        None => translated,
    }
}

fn translate_object(
    definition: &TypeDefinition,
    fields: &[Positioned<FieldDefinition>],
    resolvers: &Resolvers,
    unused: &mut BTreeSet<(String, String)>,
) -> Result<Object, SchemaError> {
    let type_name = definition.name.node.as_str();
    let mut object = Object::new(type_name);
    if let Some(description) = &definition.description {
        object = object.description(description.node.as_str());
    }
    for directive in &definition.directives {
        object = apply_object_directive(object, type_name, &directive.node)?;
    }
    for field in fields {
        let field = &field.node;
        let name = field.name.node.as_str();
        let key = (type_name.to_owned(), name.to_owned());
        let resolve = resolvers
            .by_field
            .get(&key)
            .cloned()
            .ok_or_else(|| SchemaError::MissingResolver {
                type_name: type_name.to_owned(),
                field: name.to_owned(),
            })?;
        unused.remove(&key);
        let resolve = if type_name == "Mutation" {
            guarded(name, resolve)?
        } else {
            resolve
        };
        let mut translated = Field::new(name, type_ref(&field.ty.node), move |ctx| resolve(ctx));
        if let Some(description) = &field.description {
            translated = translated.description(description.node.as_str());
        }
        if let Some(directive) = field.directives.first() {
            return Err(SchemaError::Unsupported(format!(
                "directive @{} on field `{type_name}.{name}`",
                directive.node.name.node
            )));
        }
        for argument in &field.arguments {
            translated = translated.argument(input_value(&argument.node, &format!("{type_name}.{name}"))?);
        }
        object = object.field(translated);
    }
    Ok(object)
}

/// `@key` (with `resolvable: false` for entities this subgraph only references) and
/// `@shareable` are the federation directives the cart needs.
fn apply_object_directive(object: Object, type_name: &str, directive: &ConstDirective) -> Result<Object, SchemaError> {
    match directive.name.node.as_str() {
        "shareable" => Ok(object.shareable()),
        "key" => {
            let fields = match directive.get_argument("fields").map(|value| &value.node) {
                Some(async_graphql::Value::String(fields)) => fields.clone(),
                _ => {
                    return Err(SchemaError::Unsupported(format!(
                        "@key without a `fields` string on `{type_name}`"
                    )));
                }
            };
            let resolvable = !matches!(
                directive.get_argument("resolvable").map(|value| &value.node),
                Some(async_graphql::Value::Boolean(false))
            );
            Ok(if resolvable {
                object.key(fields)
            } else {
                object.unresolvable(fields)
            })
        }
        other => Err(SchemaError::Unsupported(format!("directive @{other} on `{type_name}`"))),
    }
}

/// Wraps a mutation resolver in its access rule; a mutation without a rule is a
/// start-up error, never an open door.
fn guarded(field: &str, resolve: Resolve) -> Result<Resolve, SchemaError> {
    let rule = rule_for(Root::Mutation, field).ok_or_else(|| SchemaError::MissingAccessRule(field.to_owned()))?;
    Ok(std::sync::Arc::new(move |ctx| {
        use async_graphql::ErrorExtensions as _;
        let context: &async_graphql::Context<'_> = ctx.ctx;
        let allowed = context
            .data::<vitrina_shared::auth::Caller>()
            .and_then(|caller| check_access(caller, rule.access).map_err(|error| error.extend()));
        match allowed {
            Ok(()) => resolve(ctx),
            Err(error) => {
                async_graphql::dynamic::FieldFuture::new(async move { Err::<Option<async_graphql::Value>, _>(error) })
            }
        }
    }))
}

fn translate_input(
    definition: &TypeDefinition,
    fields: &[Positioned<InputValueDefinition>],
) -> Result<InputObject, SchemaError> {
    let type_name = definition.name.node.as_str();
    let mut input = InputObject::new(type_name);
    if let Some(description) = &definition.description {
        input = input.description(description.node.as_str());
    }
    if let Some(directive) = definition.directives.first() {
        return Err(SchemaError::Unsupported(format!(
            "directive @{} on `{type_name}`",
            directive.node.name.node
        )));
    }
    for field in fields {
        input = input.field(input_value(&field.node, type_name)?);
    }
    Ok(input)
}

fn input_value(definition: &InputValueDefinition, owner: &str) -> Result<InputValue, SchemaError> {
    let name = definition.name.node.as_str();
    if definition.default_value.is_some() || !definition.directives.is_empty() {
        return Err(SchemaError::Unsupported(format!(
            "default values or directives on `{owner}({name})`"
        )));
    }
    let mut value = InputValue::new(name, type_ref(&definition.ty.node));
    if let Some(description) = &definition.description {
        value = value.description(description.node.as_str());
    }
    Ok(value)
}

fn type_ref(ty: &Type) -> TypeRef {
    let base = match &ty.base {
        BaseType::Named(name) => TypeRef::Named(name.to_string().into()),
        BaseType::List(inner) => TypeRef::List(Box::new(type_ref(inner))),
    };
    if ty.nullable {
        base
    } else {
        TypeRef::NonNull(Box::new(base))
    }
}

//! The roles UdaConnect runs, and what each needs started before it: the one table of them.
//! `serve` runs the union of all roles; a role subcommand runs one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    PersonApi,
    LocationConsumer,
    LocationApi,
    ConnectionApi,
    Web,
}

impl Role {
    /// Every role, in start order (each after the roles it depends on).
    pub const ALL: [Role; 5] = [
        Role::PersonApi,
        Role::LocationConsumer,
        Role::LocationApi,
        Role::ConnectionApi,
        Role::Web,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::PersonApi => "person-api",
            Role::LocationConsumer => "location-consumer",
            Role::LocationApi => "location-api",
            Role::ConnectionApi => "connection-api",
            Role::Web => "web",
        }
    }

    /// Roles this one calls. In one process they start first; apart, they are reached over
    /// the network.
    pub fn depends_on(self) -> &'static [Role] {
        match self {
            Role::PersonApi => &[],
            Role::LocationConsumer => &[Role::PersonApi],
            Role::LocationApi => &[Role::PersonApi],
            Role::ConnectionApi => &[Role::PersonApi],
            Role::Web => &[Role::PersonApi, Role::LocationApi, Role::ConnectionApi],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn start_order_respects_dependencies() {
        for (i, role) in Role::ALL.iter().enumerate() {
            for dep in role.depends_on() {
                let j = Role::ALL.iter().position(|r| r == dep).unwrap();
                assert!(j < i, "{role} starts before {dep}");
            }
        }
    }
}
